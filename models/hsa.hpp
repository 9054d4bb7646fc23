// HSA: hierarchical sparse attention with a chunk encoder (landmark + chunk K/V), token-level top-k chunk
// retrieval in the upper layers, and the three length-generalisation principles of arXiv 2510.17196 as
// switches (chunk encoder, bypassing residual, enforced selection sparsity). See docs/hsa.md.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/model.hpp"

namespace lctx::models {

struct HsaConfig {
  int64_t vocab = 8192;
  int64_t d_model = 128;
  int64_t n_heads = 4;
  int64_t mlp_hidden = 0;       // 0 -> the layers' default for d_model
  int64_t lower_layers = 2;
  std::string lower = "swa";    // lower layers: "swa" (sliding-window attention) | "mamba" (RAMba: Mamba blocks,
                                // d_state 16, d_conv 4, expand 2; the upper layers keep their window attention)
  int64_t upper_layers = 2;
  int64_t window = 128;         // sliding window of the lower and upper self-attention
  int64_t chunk = 64;           // S: tokens per chunk
  int64_t topk = 8;             // chunks retrieved per token at inference
  int64_t landmark_dim = 0;     // 0 -> d_model
  int64_t encoder_layers = 2;   // bidirectional layers of the chunk encoder ("encoder", "encoder+cls")
  std::string chunk_encoder = "encoder+cls";      // "mean-pool" | "encoder" | "encoder+cls"
  std::string residual = "bypass";                // "bypass" | "standard"
  std::string selection_sparsity = "enforced";    // "enforced" | "off"
  int64_t sparsity_ratio = 16;  // enforced: training top-k = min(topk, max(2, n_chunks / sparsity_ratio))
  std::string granularity = "token";              // "token" (HSA) | "chunk" (GCA/DRT-style: one per query chunk)
  // How the selected chunks' token attentions combine: "chunk" (HSA: softmax inside each chunk, outputs mixed
  // by the softmax of the selection scores) | "joint" (one softmax over all selected tokens, each logit shifted
  // by its chunk's selection score, as in landmark attention). See docs/hsa.md.
  std::string fusion = "chunk";
  // lctx addition (off in the paper's layout): the input of every position also gets a learned projection of
  // the previous token's embedding, so keys carry "what came before me" from the first step and copy /
  // induction retrieval forms early in small-budget training (the role a short causal conv plays in Mamba).
  bool token_shift = false;
  // token_shift: how many previous tokens (1 = the previous one only). With 2, a key also carries the token
  // before its predecessor, so copying a digit string with repeated digits ("...744...") stays unambiguous.
  int64_t token_shift_width = 1;
  // lctx addition: the retrieval keys of a chunk also see the previous token's encoder output,
  // k_j = W_k tok_j + W_kp tok_{j-1} (tok_{-1} = 0: inside the chunk only, so a chunk's K/V still depend on
  // that chunk alone). A query then finds "the place after my current token" by plain same-token matching:
  // the induction step of copying, as a shifted key (a width-2 short convolution on K).
  bool key_shift = false;
  // lctx addition: weight of an auxiliary selection loss in training (0 = off, the paper's end-to-end
  // selection only). For every query token, the target is the distribution over its visible chunks of the
  // token attention mass each chunk would receive (softmax over chunks of the head-mean logsumexp of the
  // token logits, computed densely and detached); the loss is KL(target || softmax of the landmark scores),
  // so the landmarks learn which chunk holds the matching tokens even when that chunk was not selected.
  // Token granularity only.
  double selection_aux = 0.0;
  double rope_base = 10000.0;
  bool tie_embeddings = true;
  int64_t prefill_block = 4096; // streamed blocks longer than this are processed in pieces of this size

  static HsaConfig preset(const std::string& name);  // "tiny" | "small"
  // Keys of the JSON config are the field names above (plus "kind":"hsa", "lower":"swa" and "preset",
  // applied first); unknown keys and bad values throw lctx::Error.
  static HsaConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

// Device-side vs host-side bytes held by a stream state (for the flat-memory benchmark).
struct HsaMemoryStats {
  int64_t chunks = 0;             // encoded chunks in the memory
  int64_t landmark_bytes = 0;     // always on the compute device
  int64_t kv_device_bytes = 0;    // chunk K/V kept on the device (kv_offload = false)
  int64_t kv_host_bytes = 0;      // chunk K/V kept in host memory (kv_offload = true)
  int64_t local_bytes = 0;        // O(window) local state: sliding-window caches + the pending chunk
};

class HsaModel : public Model {
 public:
  explicit HsaModel(const HsaConfig& cfg);
  std::string kind() const override { return "hsa"; }
  nlohmann::json config() const override;
  int64_t vocab_size() const override { return cfg_.vocab; }
  torch::Tensor forward_hidden(const torch::Tensor& ids) override;
  torch::Tensor head(const torch::Tensor& hidden) override;
  torch::Tensor auxiliary_loss() const override { return aux_; }
  std::unique_ptr<StreamState> begin(const StreamOptions& opt = {}) override;
  torch::Tensor prefill(StreamState& st, const torch::Tensor& ids) override;

  const HsaConfig& hsa_config() const { return cfg_; }
  HsaMemoryStats memory_stats(const StreamState& st) const;

  // Test hook: when set, every retrieval records, per upper layer (in call order), the selected chunk ids
  // [B, T, K] (forward_logits) or [n, K] (prefill; n = tokens of the block), -1 = empty slot, plus the
  // absolute positions of the rows ([T] or [n]).
  struct SelectionTrace {
    std::vector<torch::Tensor> idx;
    std::vector<torch::Tensor> positions;
  };
  void set_trace(SelectionTrace* trace) { trace_ = trace; }

  // Inference-time retrieval sub-block: query rows per gather of chunk K/V (bounds device memory).
  int64_t retrieval_block = 256;

 private:
  torch::Tensor prefill_piece(StreamState& st, const torch::Tensor& ids);
  struct Impl;
  HsaConfig cfg_;
  std::shared_ptr<Impl> impl_;
  SelectionTrace* trace_ = nullptr;
  torch::Tensor aux_;  // selection_aux * mean KL of the last training-mode forward_hidden (undefined otherwise)
};

}  // namespace lctx::models
