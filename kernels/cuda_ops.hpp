// LibTorch-facing wrappers of the CUDA kernels in kernels/cuda/ (built with LCTX_WITH_CUDA only). The public
// dispatchers (kernels.hpp, chunk_attention.hpp) call these for CUDA tensors; tests and benchmarks may call
// them directly. `*_supported` says whether the kernel takes the inputs (device, dtype, sizes); otherwise the
// dispatcher runs the LibTorch reference.
#pragma once
#include <torch/torch.h>

#include <initializer_list>

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
// Training: autograd through the CUDA forward and backward kernels (kernels/cuda/selective_scan*.cu).
// T >= 1; gradients for x, dt, A, Bm, C, D and h0 (and through *h_last).
torch::Tensor selective_scan_train(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                                   const torch::Tensor& Bm, const torch::Tensor& C, const torch::Tensor& D,
                                   const torch::Tensor& h0, torch::Tensor* h_last);

}  // namespace lctx::kernels::cuda
#endif
