// A built-in checkpoint (hsa/swa/mamba) ready for streamed greedy completion: the prompt pushed through one
// Model::prefill call (processed in pieces of `block` tokens), then Model::generate. Used by `lctx run` and `lctx serve`.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include "harness/backend.hpp"
#include "harness/grid.hpp"
#include "tasks/tokenizer.hpp"

namespace lctx::models { class Model; }

namespace lctx::harness {

// How a built-in model runs; `lctx run` and `lctx serve` declare these options once
// (apps/lctx/torch/options.hpp).
struct BuiltinOptions {
  c10::Device device = c10::Device(c10::kCPU);  // parsed at the command line (models::parse_device)
  int64_t block = 0;            // prefill piece size in tokens (StreamOptions::block; 0: 4096 on the CPU, 65536 on CUDA)
  bool kv_offload = false;      // StreamOptions::kv_offload (HSA)
  bool prune = true;            // StreamOptions::prune: exact receptive-field prefill (false: --full-prefill)
  std::string precision = "fp32";  // StreamOptions::precision: HSA chunk memory storage, fp32 | bf16
};

// Reads DIR/config.json and checks the model kind and the tokenizer hash against `tokenizer` before anything
// heavy is loaded. Throws Error with a one-line message (names both hashes on a mismatch).
nlohmann::json check_checkpoint(const ModelSpec& spec, const Tokenizer& tokenizer);

class BuiltinModel : public Backend {
 public:
  BuiltinModel(const ModelSpec& spec, std::shared_ptr<const Tokenizer> tokenizer, const BuiltinOptions& opt);
  ~BuiltinModel() override;
  // Greedy completion of `ids` (the prompt, BOS not included: added when the checkpoint asks for it).
  // Thread-safe (calls are serialised).
  Completion complete(const std::vector<int32_t>& ids, int max_new);
  // Backend: the sample's prompt ids (encoded from its text when the generator kept none).
  Completion complete(const Sample& sample, int max_new) override;
  std::string device() const override { return device_name(); }
  bool wants_ids() const override { return true; }
  int parallelism() const override { return 1; }
  std::string device_name() const;   // "cpu" | "cuda:0"
  const std::string& name() const override { return spec_.name; }
  const Tokenizer& tokenizer() const { return *tok_; }
  const nlohmann::json& config() const { return config_; }

 private:
  ModelSpec spec_;
  std::shared_ptr<const Tokenizer> tok_;
  BuiltinOptions opt_;
  std::shared_ptr<models::Model> model_;
  nlohmann::json config_;
  bool add_bos_ = false;
  std::mutex mu_;
};

}  // namespace lctx::harness
