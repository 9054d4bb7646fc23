// Progress on stderr per group (model, task, length): a redrawn bar with rate and ETA on a terminal, plain
// lines (group start, every ~10 s, group end) otherwise. Thread-safe.
#pragma once
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace lctx::harness {

class Progress {
 public:
  // tty: -1 = detect with isatty(stderr). quiet: print nothing.
  explicit Progress(bool quiet = false, int tty = -1);
  // Starts a group of `total` items of which `already` were done by an earlier run.
  void begin(const std::string& label, int64_t total, int64_t already);
  void step(bool failed = false);  // one item finished in this run
  void end();                      // closes the group (prints its summary line)
  static std::string format_duration(double seconds);  // "1:02:03", "4:05", "12s"

 private:
  void draw(bool final_line);
  std::mutex mu_;
  bool quiet_, tty_;
  std::string label_;
  int64_t total_ = 0, already_ = 0, done_ = 0, failed_ = 0;
  std::chrono::steady_clock::time_point start_, last_print_;
  bool open_ = false;
};

}  // namespace lctx::harness
