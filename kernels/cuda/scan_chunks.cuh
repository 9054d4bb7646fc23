// The two chunk-level passes shared by the selective scan's forward and backward (selective_scan.cu,
// selective_scan_bwd.cu). Both recurrences are linear maps per (batch, channel, state):
//   forward  h_t = a_t h_{t-1} + dt_t x_t B_t          (from h0, over t ascending)
//   backward q_t = a_t (q_{t+1} + dy_t C_t)            (from dL/dh_last, over t descending)
// with a_t = exp(dt_t A). chunk_maps: per (batch, channel, chunk) the chunk's result from zero (U) and its
// decay P = exp(A * sum dt); chunk_carry: per (batch, channel, state) the sequential carry across the chunks,
// turning U[c] in place into the value that enters chunk c, and writing what leaves the last one.
#pragma once
#include "kernels/cuda/common.cuh"

namespace lctx::kernels::cuda_impl {

constexpr int kScanBlock = 128;

// Forward (kRev false): w = x (type T), coef = B. Backward (kRev true): w = dy (float32), coef = C.
// Grid (ceil(Di / kScanBlock), nch, B); U, P [B, nch, Di, N].
template <bool kRev, class T, class W, int NS>
__global__ void chunk_maps(const T* __restrict__ dt, const float* __restrict__ A, const T* __restrict__ coef,
                           const W* __restrict__ w, int T_, int Di, int N, int L, float* __restrict__ P,
                           float* __restrict__ U) {
  const int d = blockIdx.x * kScanBlock + threadIdx.x, c = blockIdx.y, b = blockIdx.z, nch = gridDim.y;
  if (d >= Di) return;
  float a[NS], h[NS];
#pragma unroll
  for (int n = 0; n < NS; ++n) a[n] = n < N ? A[size_t(d) * N + n] : 0.f, h[n] = 0.f;
  const int t0 = c * L, t1 = min(T_, t0 + L);
  float sdt = 0.f;
  for (int i = 0; i < t1 - t0; ++i) {
    const int t = kRev ? t1 - 1 - i : t0 + i;
    const size_t row = size_t(b) * T_ + t;
    const float dv = to_f(dt[row * Di + d]), wv = to_f(w[row * Di + d]);
    sdt += dv;
    const T* cr = coef + row * N;
#pragma unroll
    for (int n = 0; n < NS; ++n)
      if (n < N) {
        const float e = __expf(dv * a[n]);
        h[n] = kRev ? e * fmaf(to_f(cr[n]), wv, h[n]) : fmaf(e, h[n], dv * to_f(cr[n]) * wv);
      }
  }
  const size_t o = ((size_t(b) * nch + c) * Di + d) * N;
#pragma unroll
  for (int n = 0; n < NS; ++n)
    if (n < N) P[o + n] = __expf(a[n] * sdt), U[o + n] = h[n];
}

// In place over U [B, nch, Di, N]; start [B, Di, N] (or null: zeros) enters the first chunk of the direction
// (chunk 0 forward, the last chunk backward); out [B, Di, N] (or null) receives what leaves the last.
template <bool kRev>
__global__ void chunk_carry(const float* __restrict__ P, float* __restrict__ U, const float* __restrict__ start,
                            float* __restrict__ out, int B, int nch, int Di, int N) {
  const int e = blockIdx.x * blockDim.x + threadIdx.x;  // (b, d, n)
  if (e >= B * Di * N) return;
  const int b = e / (Di * N), dn = e - b * (Di * N);
  float h = start ? start[e] : 0.f;
  for (int i = 0; i < nch; ++i) {
    const int c = kRev ? nch - 1 - i : i;
    const size_t o = (size_t(b) * nch + c) * Di * N + dn;
    const float u = U[o];
    U[o] = h;
    h = fmaf(P[o], h, u);
  }
  if (out) out[e] = h;
}

template <bool kRev, class T, class W, int NS>
void launch_chunk_passes(const void* dt, const float* A, const void* coef, const W* w, const float* start, float* out,
                         int64_t B, int64_t T_, int64_t Di, int64_t N, int64_t L, int64_t nch, float* P, float* U,
                         cudaStream_t stream) {
  const dim3 grid{unsigned((Di + kScanBlock - 1) / kScanBlock), unsigned(nch), unsigned(B)};
  chunk_maps<kRev, T, W, NS><<<grid, kScanBlock, 0, stream>>>(static_cast<const T*>(dt), A,
                                                                static_cast<const T*>(coef), w, int(T_), int(Di),
                                                                int(N), int(L), P, U);
  check_launch("selective_scan chunk maps launch");
  const int64_t states = B * Di * N;
  chunk_carry<kRev><<<unsigned((states + 255) / 256), 256, 0, stream>>>(P, U, start, out, int(B), int(nch), int(Di),
                                                                         int(N));
  check_launch("selective_scan chunk carry launch");
}

}  // namespace lctx::kernels::cuda_impl
