// Host-side entry points of the CUDA kernels (kernels/cuda/*.cu), free of LibTorch: raw device pointers,
// sizes and a stream. kernels/cuda_ops.cpp checks and shapes the LibTorch tensors and calls these. Every
// function checks its launch and throws std::runtime_error ("lctx: error: CUDA ...") on failure.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace lctx::kernels::cuda_impl {

enum class DType { f32, bf16, f16 };

// ---- windowed causal attention (forward) ----------------------------------------------------------------
// q [B, H, Tq, D], k/v [B, H, Tk, D], out [B, H, Tq, D], all contiguous, of type `dt`. D <= 256.
void window_attention_fwd(DType dt, const void* q, const void* k, const void* v, void* out, int64_t B, int64_t H,
                          int64_t Tq, int64_t Tk, int64_t D, int64_t window, int64_t q_pos0, int64_t k_pos0,
                          float scale, cudaStream_t stream);

// ---- chunk attention (forward and backward) -------------------------------------------------------------
struct ChunkShape {
  int64_t B, H, Hkv, T, D, N, S, K;  // q [B, H, T, D], idx/w [B, T, K], k/v [B, N, Hkv, S, D]
};
// q of type `dt_q` (= dt, or float32 over lower-precision k/v), k/v of type `dt`. out: float32 [B, H, T, D]
// when out_f32, else of type `dt_q`. lse [B, H, T] (joint only, may be null): the log-sum-exp of the joint
// logits (-inf for rows without a selected slot).
void chunk_attention_fwd(DType dt_q, DType dt, const void* q, const int64_t* idx, const float* w, const void* k,
                         const void* v, void* out, bool out_f32, float* lse, const ChunkShape& s, float scale,
                         bool joint, cudaStream_t stream);
// dout float32 [B, H, T, D]; out32 float32 (joint only); dq of type `dt`; dk/dv float32 accumulators and dw
// float32 [B, T, K], all zeroed by the caller.
void chunk_attention_bwd(DType dt, const void* q, const int64_t* idx, const float* w, const void* k, const void* v,
                         const float* out32, const float* lse, const float* dout, void* dq, float* dk, float* dv,
                         float* dw, const ChunkShape& s, float scale, bool joint, cudaStream_t stream);

// ---- landmark scoring + top-k -------------------------------------------------------------------------
// q [Tq, d], landmarks [N, d] of type `dt`; visible [Tq] int64; k <= 64, d <= 256. Writes idx [Tq, kk] int64
// (-1 empty) and scores [Tq, kk] float32 (-inf empty), kk = min(k, N), slots sorted by score (descending),
// equal scores by chunk index (ascending). `sm_count` sizes the grid.
void select_topk(DType dt, const void* q, const void* landmarks, const int64_t* visible, int64_t Tq, int64_t N,
                 int64_t d, int64_t k, float scale, int64_t* idx, float* scores, int sm_count, cudaStream_t stream);

// ---- Mamba selective scan (forward; backward for training) ----------------------------------------------
// x, dt [B, T, Di], Bm, C [B, T, N] of type `dtp`; A [Di, N], D [Di] (or null), h0 [B, Di, N] (or null)
// float32; y [B, T, Di] of type `dtp`; h_last [B, Di, N] float32 (or null). N <= 64.
// Training: H [B, nch, Di, N] float32 (nch = ceil(T / chunk), chunk = selective_scan_train_chunk(N))
// receives every chunk's start state for the backward; with H null `chunk` is ignored (its own choice).
void selective_scan_fwd(DType dtp, const void* x, const void* dt, const float* A, const void* Bm, const void* C,
                        const float* D, const float* h0, void* y, float* h_last, int64_t B, int64_t T, int64_t Di,
                        int64_t N, cudaStream_t stream, int64_t chunk = 0, float* H = nullptr);
// The chunk length of training (the backward's unit of recomputation) and the number of channel groups G of
// the backward's partial dB/dC sums.
int64_t selective_scan_train_chunk(int64_t N);
int64_t selective_scan_bwd_groups(int64_t Di, int64_t N);
// Backward of the SSM part (without the skip term D x): from the forward's inputs and H, dy [B, T, Di] and
// dh_last [B, Di, N] (or null) float32. Writes dx, ddt [B, T, Di] float32, dA_part [B, nch, Di, N] (sum over
// dims 0-1 is dA), dBC_part [G, B, T, 2, N] (sum over dim 0: [.., 0, :] dC, [.., 1, :] dB) and dh0 [B, Di, N]
// (or null), all float32, every element written. T >= 1.
void selective_scan_bwd(DType dtp, const void* x, const void* dt, const float* A, const void* Bm, const void* C,
                        const float* H, const float* dy, const float* dh_last, float* dx, float* ddt, float* dA_part,
                        float* dBC_part, float* dh0, int64_t B, int64_t T, int64_t Di, int64_t N, cudaStream_t stream);

}  // namespace lctx::kernels::cuda_impl
