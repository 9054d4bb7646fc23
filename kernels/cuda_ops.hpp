// LibTorch-facing wrappers of the CUDA kernels in kernels/cuda/ (built with LCTX_WITH_CUDA only). The public
// dispatchers (kernels.hpp, chunk_attention.hpp) call these for CUDA tensors; tests and benchmarks may call
// them directly. `*_supported` says whether the kernel takes the inputs (device, dtype, sizes); otherwise the
// dispatcher runs the LibTorch reference.
#pragma once
#include <torch/torch.h>

#include <initializer_list>
#include <vector>

#include "kernels/chunk_attention.hpp"

#ifdef LCTX_HAVE_CUDA_KERNELS
namespace lctx::kernels::cuda {

// Whether autograd would record an operation on any of the (defined) tensors.
bool needs_grad(std::initializer_list<torch::Tensor> ts);

bool window_attention_supported(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);
// Arguments already checked (kernels.hpp's contract); scale > 0. Forward only.
torch::Tensor window_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window,
                               int64_t q_pos0, int64_t k_pos0, double scale);

// q [H, Tq, D] or [B, H, T, D]; k [N, Hkv, S, D] or [B, N, Hkv, S, D].
bool chunk_attention_supported(const torch::Tensor& q, const torch::Tensor& k);
// Inference (no autograd): the shapes of chunk_attention / chunk_attention_joint.
torch::Tensor chunk_attention(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& w,
                              const torch::Tensor& k, const torch::Tensor& v, double scale, bool joint);
// Training (autograd through custom forward and backward kernels): the shapes of chunk_attention_train.
torch::Tensor chunk_attention_train(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& w,
                                    const torch::Tensor& k, const torch::Tensor& v, double scale, bool joint);

bool select_chunks_supported(const torch::Tensor& q, const torch::Tensor& landmarks, int64_t k);
ChunkSelection select_chunks(const torch::Tensor& q, const torch::Tensor& landmarks, const torch::Tensor& visible,
                             int64_t k, double scale);

bool selective_scan_supported(const torch::Tensor& x, const torch::Tensor& A);
torch::Tensor selective_scan(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                             const torch::Tensor& Bm, const torch::Tensor& C, const torch::Tensor& D,
                             const torch::Tensor& h0, torch::Tensor* h_last);
// The two halves of the fused training scan (its autograd Function is in selective_scan.cpp). Inputs
// contiguous on one CUDA device: x/dt/Bm/C of one kernel dtype, A/D/h0 float32 (D, h0 may be undefined),
// chunk = the training chunk length. Forward: y (x's dtype), h_last and the chunk start states H
// [B, nch, Di, N] float32. Backward (dy float32, dh_last float32 or undefined): {dx, ddt, dA, dB, dC, dh0},
// float32, dx without the skip term.
void selective_scan_train_fwd(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                              const torch::Tensor& Bm, const torch::Tensor& C, const torch::Tensor& D,
                              const torch::Tensor& h0, int64_t chunk, torch::Tensor& y, torch::Tensor& h_last,
                              torch::Tensor& H);
std::vector<torch::Tensor> selective_scan_train_bwd(const torch::Tensor& x, const torch::Tensor& dt,
                                                    const torch::Tensor& A, const torch::Tensor& Bm,
                                                    const torch::Tensor& C, const torch::Tensor& H,
                                                    const torch::Tensor& dy, const torch::Tensor& dh_last);

}  // namespace lctx::kernels::cuda
#endif
