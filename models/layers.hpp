// Reusable LibTorch blocks for lctx's built-in models: RMSNorm, rotary embeddings at absolute positions,
// SwiGLU MLP, causal sliding-window multi-head attention (full forward + streaming with a rolling K/V cache),
// the pre-norm transformer block, token embedding + LM head (the JSON config reader is in config.hpp). Streaming forwards take the absolute position of their first token, so a sequence pushed in blocks of
// any size sees exactly the rotations, masks and keys of one full forward.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/config.hpp"

namespace lctx::models {

// ---- RMSNorm --------------------------------------------------------------------------------------------
struct RMSNormImpl : torch::nn::Module {
  explicit RMSNormImpl(int64_t dim, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);  // normalises the last dim in float32, returns x's dtype
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

// ---- rotary position embedding --------------------------------------------------------------------------
// Rotate-half RoPE over head_dim (even). Angles are computed in float64 from absolute positions, so position
// 32M rotates as precisely as position 0.
struct RopeTables {
  torch::Tensor cos, sin;  // [T, head_dim/2], float32
};
class Rope {
 public:
  Rope() = default;
  Rope(int64_t head_dim, double base);
  RopeTables tables(int64_t pos0, int64_t len, const torch::Device& device) const;    // positions pos0..pos0+len-1
  RopeTables tables(const torch::Tensor& positions) const;                            // any positions [T] (int64)
  // x [..., T, head_dim] -> rotated, same dtype.
  static torch::Tensor apply(const torch::Tensor& x, const RopeTables& t);
  // Rows [off, off + len) of tables made for consecutive positions.
  static RopeTables slice(const RopeTables& t, int64_t off, int64_t len);
  int64_t head_dim() const { return head_dim_; }
  double base() const { return base_; }

 private:
  int64_t head_dim_ = 0;
  double base_ = 10000.0;
  torch::Tensor inv_freq_;  // [head_dim/2] float64 (CPU)
};

// ---- SwiGLU MLP: w_down(silu(w_gate x) * w_up x) -------------------------------------------------------
int64_t default_mlp_hidden(int64_t d_model);  // ~8/3 d rounded up to a multiple of 32
struct SwiGLUImpl : torch::nn::Module {
  SwiGLUImpl(int64_t d_model, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear w_gate{nullptr}, w_up{nullptr}, w_down{nullptr};
};
TORCH_MODULE(SwiGLU);

// ---- causal sliding-window attention --------------------------------------------------------------------
// Rolling K/V cache of one attention layer: post-RoPE keys/values of the last window-1 positions (all a
// future query can still see), oldest first. Empty (undefined) at the start.
struct KVCache {
  torch::Tensor k, v;  // [B, H, L, head_dim], L <= window - 1
  int64_t next = 0;    // absolute position right after the cached rows
  int64_t bytes() const;
};

struct WindowAttentionImpl : torch::nn::Module {
  // Query at position p attends to keys p-window+1 .. p. qk_norm: RMSNorm of q and k per head (learned gain
  // over head_dim, before RoPE), parameters "q_norm" / "k_norm".
  WindowAttentionImpl(int64_t d_model, int64_t n_heads, int64_t window, double rope_base, bool qk_norm = false);
  // Full forward: x [B, T, C], tokens at positions pos0..; no cache.
  torch::Tensor forward(const torch::Tensor& x, int64_t pos0 = 0);
  // Same with precomputed RoPE tables for positions pos0..pos0+T-1.
  torch::Tensor forward(const torch::Tensor& x, int64_t pos0, const RopeTables& rope);
  // Streaming: x [B, n, C] continues the sequence held by `cache` (positions pos0..pos0+n-1, the cache
  // holding the positions just before); updates the cache. `n_query` >= 0: only the last n_query rows are
  // queries (the output has n_query rows; 0 = keys only); every row still becomes a key. A cache that does
  // not end right before pos0 (a gap left by pruned prefill) is dropped: the caller guarantees that the
  // queries it keeps never look into the gap (docs/models.md, "Pruned prefill").
  torch::Tensor forward_stream(const torch::Tensor& x, int64_t pos0, const RopeTables& rope, KVCache& cache,
                               int64_t n_query = -1);
  // q, k, v [B, H, T, head_dim] with QK-norm (when on) and RoPE applied to q and k.
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> project(const torch::Tensor& x, const RopeTables& rope);
  torch::Tensor merge_heads(const torch::Tensor& y);  // [B, H, T, hd] -> o([B, T, C])

  int64_t n_heads, head_dim, window;
  Rope rope;
  torch::nn::Linear wq{nullptr}, wk{nullptr}, wv{nullptr}, wo{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // qk_norm only
};
TORCH_MODULE(WindowAttention);

// ---- pre-norm transformer block: x + attn(norm(x)); then + mlp(norm(.)) ---------------------------------
struct TransformerBlockImpl : torch::nn::Module {
  TransformerBlockImpl(int64_t d_model, int64_t n_heads, int64_t window, int64_t mlp_hidden, double rope_base,
                       double norm_eps = 1e-6, bool qk_norm = false);
  torch::Tensor forward(const torch::Tensor& x, int64_t pos0, const RopeTables& rope);
  // n_query >= 0: outputs (and the MLP) for the last n_query rows only (see WindowAttention).
  torch::Tensor forward_stream(const torch::Tensor& x, int64_t pos0, const RopeTables& rope, KVCache& cache,
                               int64_t n_query = -1);
  RMSNorm attn_norm{nullptr}, mlp_norm{nullptr};
  WindowAttention attn{nullptr};
  SwiGLU mlp{nullptr};
};
TORCH_MODULE(TransformerBlock);

// ---- token embedding + LM head (tied: logits = h . E^T) -------------------------------------------------
struct EmbeddingHeadImpl : torch::nn::Module {
  EmbeddingHeadImpl(int64_t vocab, int64_t d_model, bool tied);
  torch::Tensor embed(const torch::Tensor& ids);     // int64 [...] -> [..., C]
  torch::Tensor logits(const torch::Tensor& h);      // [..., C] -> [..., V] float32
  int64_t vocab;
  bool tied;
  torch::nn::Embedding tok{nullptr};
  torch::nn::Linear head{nullptr};  // null when tied
};
TORCH_MODULE(EmbeddingHead);

// GPT-2 style initialisation: N(0, 0.02) for linears and embeddings, output projections (names ending in
// "wo.weight", "w_down.weight", "out_proj.weight") scaled by 1/sqrt(2 * n_layers) unless scale_outputs is
// false (then N(0, 0.02) too, as the HSA authors initialise); zero biases; RMSNorm 1.
void init_weights(torch::nn::Module& m, int64_t n_layers, bool scale_outputs = true);

// Validates a streamed block: 1-D int64 (other integer types are converted) with at least one id in range.
torch::Tensor check_block(const torch::Tensor& ids, int64_t vocab, const torch::Device& device);
// Validates a batch [B, T] for forward_logits.
torch::Tensor check_batch(const torch::Tensor& ids, int64_t vocab, const torch::Device& device);

}  // namespace lctx::models
