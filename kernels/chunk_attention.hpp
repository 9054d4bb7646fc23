// HSA retrieval primitives: landmark scoring + top-k chunk selection, and gathered chunk attention
// (token-level attention inside each selected chunk, softmax within the chunk, outputs fused by chunk
// weights). LibTorch implementations only (they run on any device, CUDA included); `chunk_attention` is the
// dispatcher a CUDA kernel would plug into (none yet: it calls the reference).
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
// computed in query blocks so at most ~max_elems scores exist at once, then topk_visible.
ChunkSelection select_chunks(const torch::Tensor& q, const torch::Tensor& landmarks, const torch::Tensor& visible,
                             int64_t k, double scale, int64_t max_elems = int64_t(1) << 24);

// Gathered chunk attention.
//   q       [H, Tq, D]
//   idx     [Tq, K] int64 rows of k/v, -1 = empty slot (contributes nothing)
//   weights [Tq, K] chunk weights (e.g. softmax over the selected scores; ignored in empty slots)
//   k, v    [N, H, S, D] chunk keys / values
// out[h, t] = sum_j weights[t, j] * sum_s softmax_s(scale * q[h, t] . k[idx[t, j], h, s]) * v[idx[t, j], h, s]
// Returns [H, Tq, D] in q's dtype; rows whose slots are all empty are zero. Inference only: the reference
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

}  // namespace lctx::kernels
