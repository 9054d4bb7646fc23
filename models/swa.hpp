// SWA baseline: token embedding -> n_layers pre-norm transformer blocks with causal sliding-window attention
// (RoPE at absolute positions) and SwiGLU MLPs -> final RMSNorm -> LM head. Streamed state: one rolling
// K/V cache of window-1 positions per layer, so memory is flat in the context length. See docs/models.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/config.hpp"
#include "models/layers.hpp"
#include "models/model.hpp"

namespace lctx::models {

struct SwaState : StreamState {
  std::vector<KVCache> caches;  // one per layer
  StreamOptions opt;
  int64_t bytes() const;
};

class SwaModel : public Model {
 public:
  explicit SwaModel(const SwaConfig& cfg);
  std::string kind() const override { return "swa"; }
  nlohmann::json config() const override { return cfg_.to_json(); }
  int64_t vocab_size() const override { return cfg_.vocab; }
  torch::Tensor forward_hidden(const torch::Tensor& ids) override;
  torch::Tensor head(const torch::Tensor& hidden) override;
  std::unique_ptr<StreamState> begin(const StreamOptions& opt = {}) override;
  torch::Tensor prefill(StreamState& st, const torch::Tensor& ids) override;
  const SwaConfig& swa_config() const { return cfg_; }

 private:
  SwaConfig cfg_;
  EmbeddingHead emb_{nullptr};
  std::vector<TransformerBlock> blocks_;
  RMSNorm final_norm_{nullptr};
};

}  // namespace lctx::models
