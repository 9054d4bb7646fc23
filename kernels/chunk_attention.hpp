// HSA retrieval primitives: landmark scoring + top-k chunk selection, and gathered chunk attention
// (token-level attention inside each selected chunk, softmax within the chunk, outputs fused by chunk
// weights; or one joint softmax over all selected tokens). Each has a LibTorch reference (any device,
// autograd); the dispatchers (select_chunks, chunk_attention, chunk_attention_joint, chunk_attention_train)
// run the CUDA kernels of kernels/cuda/ for CUDA tensors when lctx is built with LCTX_WITH_CUDA (see
// docs/kernels.md), and the reference otherwise.
#pragma once
#include <cstdint>

#include <torch/torch.h>

namespace lctx::kernels {

// Chosen chunks per query row: idx [..., Tq, K] int64 (-1 = empty slot), scores [..., Tq, K] (the raw scores
// of the chosen chunks, -inf in empty slots). K = min(k, N).
struct ChunkSelection {
  torch::Tensor idx;
  torch::Tensor scores;
};

// Top-k over precomputed scores [..., Tq, N] where query row t may only choose chunks 0..visible[t]-1
// (visible [Tq] int64, shared over leading dims). `noise` (same shape as scores, or undefined) is added to
// the scores for the ranking only (Gumbel-noised training selection); the returned scores are the
// noise-free ones. Rows with fewer than k visible chunks get -1 in the extra slots; rows with none get -1
// everywhere. No gradient flows through the result (gather the scores yourself for that).
ChunkSelection topk_visible(const torch::Tensor& scores, const torch::Tensor& visible, int64_t k,
                            const torch::Tensor& noise = torch::Tensor());

// Memory-bounded scoring + selection for streamed inference: scores = q [Tq, d] . landmarks[N, d]^T * scale,
// computed in query blocks so at most ~max_elems scores exist at once, then topk_visible. The slots of a row
// are sorted by score, highest first. Equal scores: the reference keeps torch::topk's order (unspecified);
// the CUDA kernel puts the lower chunk index first. The CUDA kernel (k <= 64, d <= 256, float32/bfloat16/
// float16) fuses scoring and selection and never materialises the [Tq, N] scores; its scores are
// accumulated in float32 (the reference multiplies in the input dtype).
ChunkSelection select_chunks(const torch::Tensor& q, const torch::Tensor& landmarks, const torch::Tensor& visible,
                             int64_t k, double scale, int64_t max_elems = int64_t(1) << 24);
ChunkSelection select_chunks_reference(const torch::Tensor& q, const torch::Tensor& landmarks,
                                       const torch::Tensor& visible, int64_t k, double scale,
                                       int64_t max_elems = int64_t(1) << 24);

// Gathered chunk attention.
//   q       [H, Tq, D]
//   idx     [Tq, K] int64 rows of k/v, -1 = empty slot (contributes nothing)
//   weights [Tq, K] chunk weights (e.g. softmax over the selected scores; ignored in empty slots)
//   k, v    [N, Hkv, S, D] chunk keys / values; H % Hkv == 0 (grouped-query: head h reads kv head h / (H/Hkv))
// out[h, t] = sum_j weights[t, j] * sum_s softmax_s(scale * q[h, t] . k[idx[t, j], h', s]) * v[idx[t, j], h', s]
// with h' = h / (H / Hkv). Returns [H, Tq, D] in q's dtype; rows whose slots are all empty are zero.
// Inference: the CUDA kernel has no backward (use chunk_attention_train for training); the reference
// supports autograd.
torch::Tensor chunk_attention(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& weights,
                              const torch::Tensor& k, const torch::Tensor& v, double scale);
torch::Tensor chunk_attention_reference(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& weights,
                                        const torch::Tensor& k, const torch::Tensor& v, double scale);

// Joint fusion (HSA config "fusion": "joint"): one softmax over the tokens of all selected chunks, each
// token's logit shifted by its chunk's selection score:
// out[h, t] = sum_j sum_s softmax_{(j, s)}(scale * q[h, t] . k[idx[t, j], h, s] + bias[t, j]) * v[idx[t, j], h, s]
// bias [Tq, K] (-inf or idx -1 = empty slot). Equals chunk_attention with weights[t, j] proportional to
// exp(bias[t, j]) * sum_s exp(scale * q . k) (the chunk's own partition function joins its weight).
torch::Tensor chunk_attention_joint(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& bias,
                                    const torch::Tensor& k, const torch::Tensor& v, double scale);
torch::Tensor chunk_attention_joint_reference(const torch::Tensor& q, const torch::Tensor& idx,
                                              const torch::Tensor& bias, const torch::Tensor& k,
                                              const torch::Tensor& v, double scale);

// Batched, differentiable chunk attention for training (the sparse replacement of the dense O(T^2) path):
//   q    [B, H, T, D]
//   idx  [B, T, K] int64 chunk ids into k/v's N axis, -1 = empty slot; not differentiated
//   w    [B, T, K] chunk weights (joint = false) or logit biases (joint = true); differentiable. The caller
//        computes them (softmax, stick-breaking, softmax1, ... over the selected scores).
//   k, v [B, N, Hkv, S, D], H % Hkv == 0 (query head h reads kv head h / (H / Hkv))
// joint = false: out[b,h,t] = sum_j w[b,t,j] * sum_s softmax_s(scale * q . k[b, idx, h', s]) * v[b, idx, h', s]
//   (empty slots contribute nothing and get dw = 0);
// joint = true:  out[b,h,t] = sum_{j,s} softmax_{(j,s)}(scale * q . k[b, idx, h', s] + w[b,t,j]) * v[b, idx, h', s]
//   (slots with idx -1 or w = -inf are left out; a row with none left gives 0).
// Returns [B, H, T, D] in q's dtype, computed in float32 (float64 inputs: float64 on the reference). Gradients
// flow to q, w, k and v. The reference gathers each row's chunks with LibTorch ops (autograd through them,
// memory O(T * K * Hkv * S * D)); on CUDA (float32/bfloat16/float16, D <= 256, S <= 128) custom forward and
// backward kernels run inside a torch::autograd::Function (dk/dv by atomic accumulation in float32).
torch::Tensor chunk_attention_train(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& w,
                                    const torch::Tensor& k, const torch::Tensor& v, double scale, bool joint);
torch::Tensor chunk_attention_train_reference(const torch::Tensor& q, const torch::Tensor& idx,
                                              const torch::Tensor& w, const torch::Tensor& k,
                                              const torch::Tensor& v, double scale, bool joint);

// Whether this build carries the CUDA kernels (LCTX_WITH_CUDA).
bool cuda_kernels_built();

}  // namespace lctx::kernels
