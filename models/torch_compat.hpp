// The one place where LibTorch 1.13 (Debian, CPU) and LibTorch 2.x (GPU box) differ for lctx's models.
// Everything else in models/ and kernels/ uses only the stable C++ API common to both.
#pragma once
#include <cstdint>

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#define LCTX_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace lctx::models::compat {

// Read-only raw pointer (2.x adds const_data_ptr; 1.13 only has data_ptr).
template <class T>
inline const T* cdata(const torch::Tensor& t) {
  return static_cast<const T*>(t.data_ptr());
}

// Whether a CUDA device is usable (same call in both; kept here so callers need not include cuda headers).
inline bool cuda_available() { return torch::cuda::is_available(); }

// Synchronise the device before reading a wall clock (CUDA launches are asynchronous).
inline void synchronize(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.has_index() ? d.index() : -1);
}

// Turns LibTorch's CUDA autocast to bf16 on or off (the C++ autocast API differs between 1.13 and 2.4+);
// off also clears the autocast cast cache.
inline void set_autocast_cuda_bf16(bool on) {
#if LCTX_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCUDA, on);
#else
  at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  at::autocast::set_enabled(on);
#endif
  if (!on) at::autocast::clear_cache();
}

}  // namespace lctx::models::compat
