// kernels/: the operations LibTorch does badly, each with a LibTorch reference (any device, autograd) and,
// when compiled with LCTX_WITH_CUDA, a CUDA implementation picked by the dispatcher for CUDA inputs.
// Shared header: models (window attention, selective scan) and HSA (chunk attention) declarations.
#pragma once
#include <cstdint>

#include <torch/torch.h>

#include "kernels/chunk_attention.hpp"

namespace lctx::kernels {

// ---- causal sliding-window attention ------------------------------------------------------------------
// q [B, H, Tq, D], k/v [B, H, Tk, D]. Query i sits at absolute position q_pos0 + i, key j at k_pos0 + j;
// query p attends to keys at positions p - window + 1 .. p (window keys, itself included). Every query must
// see its own position (k_pos0 <= q_pos0 and q_pos0 + Tq <= k_pos0 + Tk). Softmax scale 1/sqrt(D) unless
// scale > 0. Computed in query blocks so memory is O(Tq * (block + window)) rather than O(Tq * Tk).
// Output [B, H, Tq, D] in q's dtype (softmax in float32). Autograd works through the reference. CUDA tensors
// outside autograd (float32/bfloat16/float16, D <= 256) run the flash-style CUDA kernel (online softmax over
// the window, no band materialised); under autograd with q_pos0 == k_pos0 and Tq == Tk (training) the
// blocked form below; otherwise `*_reference`, the LibTorch path on any device.
torch::Tensor window_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               int64_t window, int64_t q_pos0, int64_t k_pos0, double scale = 0.0);
torch::Tensor window_attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                         int64_t window, int64_t q_pos0, int64_t k_pos0, double scale = 0.0,
                                         int64_t query_block = 0);
// Self-attention of one sequence (q, k, v at the same positions; rotary offsets do not matter), the form used
// under autograd by window_attention: blocks of max(window, 64) queries attend to their own block and the one
// before under one band mask, so the whole layer is a handful of operations instead of a loop over blocks
// (2x the necessary scores). LibTorch >= 2.0: scaled_dot_product_attention with that mask (fused
// memory-efficient attention forward and backward where it applies); 1.13: matmul + softmax in float32.
torch::Tensor window_attention_blocked(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       int64_t window, double scale = 0.0);
// Unmasked attention of q [.., Tq, D] against k/v [.., Tk, D] (the chunk encoder): scaled_dot_product_attention
// on LibTorch >= 2.0, matmul + float32 softmax on 1.13.
torch::Tensor attention_full(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             double scale = 0.0);
// Dense O(Tq*Tk) masked attention: the definition, for tests.
torch::Tensor window_attention_dense(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     int64_t window, int64_t q_pos0, int64_t k_pos0, double scale = 0.0);

// ---- Mamba selective scan -----------------------------------------------------------------------------
//   h_t = exp(dt_t * A) * h_{t-1} + dt_t * B_t * x_t        (per channel d and state n)
//   y_t = sum_n C_t[n] * h_t[d, n] + D[d] * x_t[d]
// x, dt [B, T, Di] (dt already positive, e.g. softplus'd); A [Di, N] (negative); Bm, C [B, T, N]; D [Di] (or
// undefined: no skip term); h0 [B, Di, N] (or undefined: zeros). Returns y [B, T, Di]; the final state
// [B, Di, N] goes to *h_last when given. Computed in chunks of `chunk` steps: inside a chunk a parallel
// (Hillis-Steele) scan over the decays and inputs, across chunks a sequential carry, so the number of
// LibTorch calls is O(T / chunk * log chunk) and memory O(B * chunk * Di * N) per chunk. Autograd works.
// The reference and the definition compute in float32 (float64 for float64 inputs); y has x's dtype.
// The dispatcher: CPU outside autograd -> a direct loop; CPU with autograd -> the chunked reference; CUDA
// (N <= 64, T >= 1) -> the chunked CUDA kernel (its own chunk length; `chunk` is ignored), with autograd
// selective_scan_fused (the CUDA forward and backward kernels).
torch::Tensor selective_scan(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                             const torch::Tensor& Bm, const torch::Tensor& C, const torch::Tensor& D,
                             const torch::Tensor& h0, torch::Tensor* h_last = nullptr, int64_t chunk = 64);
torch::Tensor selective_scan_reference(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                                       const torch::Tensor& Bm, const torch::Tensor& C, const torch::Tensor& D,
                                       const torch::Tensor& h0, torch::Tensor* h_last = nullptr,
                                       int64_t chunk = 64);
// The fused training scan: autograd through a forward that keeps only the chunk start states H
// [B, T / L, Di, N] (L = 32 steps, 16 for N > 32) and a backward that recomputes each chunk from H and walks
// it in reverse (docs/kernels.md); memory O(B * T * Di) plus H. CUDA tensors (N <= 64): the CUDA kernels
// (what the dispatcher runs under autograd); CPU: the same chunked algorithm in plain float32 loops (tests;
// the CPU dispatcher keeps the reference). T >= 1.
torch::Tensor selective_scan_fused(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                                   const torch::Tensor& Bm, const torch::Tensor& C, const torch::Tensor& D,
                                   const torch::Tensor& h0, torch::Tensor* h_last = nullptr);
// One step per time index (the definition, for tests and single-token decoding).
torch::Tensor selective_scan_sequential(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                                        const torch::Tensor& Bm, const torch::Tensor& C, const torch::Tensor& D,
                                        const torch::Tensor& h0, torch::Tensor* h_last = nullptr);

}  // namespace lctx::kernels
