// Opt-in phase timing for streamed inference: with LCTX_PROFILE=1 in the environment, every Scope
// synchronises its device on entry and exit (CUDA launches are asynchronous), adds the wall time to its phase,
// and the process prints one summary table to stderr at exit (phase, calls, seconds, share). Without the
// variable a Scope costs one branch. Phases used by the models: embed, lower, encoder, kv_store, upper_swa,
// selection, gather, attention, mlp, head.
#pragma once
#include <chrono>
#include <string>

#include <torch/torch.h>

namespace lctx::models::profile {

bool enabled();
void add(const char* phase, double seconds);
// The table so far (also printed at exit when enabled); empty when nothing was timed.
std::string summary();

class Scope {
 public:
  Scope(const char* phase, const torch::Device& dev) : phase_(phase), dev_(dev), on_(enabled()) {
    if (on_) start();
  }
  ~Scope() {
    if (on_) stop();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  void start();
  void stop();
  const char* phase_;
  torch::Device dev_;
  bool on_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace lctx::models::profile
