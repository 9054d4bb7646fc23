// SWA baseline: token embedding -> n_layers pre-norm transformer blocks with causal sliding-window attention
// (RoPE at absolute positions) and SwiGLU MLPs -> final RMSNorm -> LM head. Streamed state: one rolling
// K/V cache of window-1 positions per layer, so memory is flat in the context length. See docs/models.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/layers.hpp"
#include "models/model.hpp"

namespace lctx::models {

struct SwaConfig {
  int64_t vocab = 8192;
  int64_t d_model = 128;
  int64_t n_layers = 4;
  int64_t n_heads = 4;
  int64_t window = 256;         // keys per query, itself included
  int64_t mlp_hidden = 0;       // 0 -> default_mlp_hidden(d_model)
  double rope_base = 10000.0;
  double norm_eps = 1e-6;
  bool tie_embeddings = true;
  bool qk_norm = false;         // RMSNorm of q and k per head (as in the HSA paper preset's SWA layers)
  int64_t prefill_block = 4096; // streamed blocks longer than this are processed in pieces of this size

  static SwaConfig preset(const std::string& name);  // "tiny" | "small"
  // Keys: the field names, "kind" ("swa") and "preset" (applied first). Unknown keys -> lctx::Error.
  static SwaConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;  // every field, "kind":"swa"
};

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
