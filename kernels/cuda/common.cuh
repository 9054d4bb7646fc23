// Shared device helpers of the CUDA kernels: element loads/stores as float, warp reductions, launch checks.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/launch.hpp"

namespace lctx::kernels::cuda_impl {

constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
template <class T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) { return x; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <>
__device__ __forceinline__ __half from_f<__half>(float x) { return __float2half(x); }

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("lctx: error: CUDA ") + what + ": " + cudaGetErrorString(e));
}
// After a launch: configuration errors surface at once; faults inside the kernel surface at the next
// synchronising call (LibTorch's), or here with LCTX_CUDA_SYNC_CHECK defined.
inline void check_launch(const char* what) {
  check(cudaGetLastError(), what);
#ifdef LCTX_CUDA_SYNC_CHECK
  check(cudaDeviceSynchronize(), what);
#endif
}

// Eight consecutive elements as float (p 16-byte aligned).
__device__ __forceinline__ void load8(const float* p, float (&o)[8]) {
  const float4 a = *reinterpret_cast<const float4*>(p), b = *reinterpret_cast<const float4*>(p + 4);
  o[0] = a.x, o[1] = a.y, o[2] = a.z, o[3] = a.w, o[4] = b.x, o[5] = b.y, o[6] = b.z, o[7] = b.w;
}
template <class T>
__device__ __forceinline__ void load8(const T* p, float (&o)[8]) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const T* e = reinterpret_cast<const T*>(&u);
#pragma unroll
  for (int i = 0; i < 8; ++i) o[i] = to_f(e[i]);
}

// Copies rows x cols elements (row-major, contiguous in src) into dst with row stride ld, as float.
// Vector loads when cols % 8 == 0 and src is aligned; a block-wide loop over threadIdx.x.
template <class T>
__device__ __forceinline__ void stage_rows(const T* __restrict__ src, int rows, int cols, float* dst, int ld) {
  const int n = rows * cols;
  if (cols % 8 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0) {
    for (int e = threadIdx.x * 8; e < n; e += blockDim.x * 8) {
      float o[8];
      load8(src + e, o);
      const int r = e / cols, c = e - r * cols;
#pragma unroll
      for (int i = 0; i < 8; ++i) dst[r * ld + c + i] = o[i];
    }
  } else {
    for (int e = threadIdx.x; e < n; e += blockDim.x) {
      const int r = e / cols, c = e - r * cols;
      dst[r * ld + c] = to_f(src[e]);
    }
  }
}

// Row stride of a float tile in shared memory. D % 4 == 0: 16-byte rows with an odd number of float4 per
// row (D + 4 or D + 8), so float4 reads of row j by lane j fall in distinct banks within each quarter warp;
// otherwise D + 1 (lane j's word c in bank (j + c) % 32).
__host__ __device__ __forceinline__ int tile_ld(int D) { return D % 8 == 0 ? D + 4 : D % 4 == 0 ? D + 8 : D + 1; }

// sum_c a[c] * b[c] over D floats in shared memory; with D % 4 == 0 both rows must be 16-byte aligned.
__device__ __forceinline__ float dot_row(const float* a, const float* b, int D) {
  float s = 0.f;
  if (D % 4 == 0) {
    for (int c = 0; c < D; c += 4) {
      const float4 x = *reinterpret_cast<const float4*>(a + c), y = *reinterpret_cast<const float4*>(b + c);
      s = fmaf(x.x, y.x, s), s = fmaf(x.y, y.y, s), s = fmaf(x.z, y.z, s), s = fmaf(x.w, y.w, s);
    }
  } else {
    for (int c = 0; c < D; ++c) s = fmaf(a[c], b[c], s);
  }
  return s;
}

// Calls f.template operator()<T>() with T the element type of `dt`.
template <class F>
void dispatch_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::f32: f(float{}); break;
    case DType::bf16: f(__nv_bfloat16{}); break;
    case DType::f16: f(__half{}); break;
  }
}

// Rounds n up to the next supported head-size bucket (columns per lane = NC * 32 >= n).
inline int head_cols(int64_t d) { return d <= 32 ? 1 : d <= 64 ? 2 : d <= 128 ? 4 : 8; }

}  // namespace lctx::kernels::cuda_impl
