// Mamba selective scan, forward, chunked over time:
//   pass 1: per (batch, channel, time chunk) the chunk's own end state from zero, u = h_end(0), and its decay
//           P[n] = exp(A[d, n] * sum of dt over the chunk) (the composed affine map h -> P h + u);
//   pass 2: per (batch, channel, state) a sequential carry over the chunks from h0: the chunk's start state;
//   pass 3: per (batch, channel, chunk) the recurrence again from its start state, emitting y.
// One thread owns one (batch, channel) with its N states in registers; threads of a block are consecutive
// channels, so x/dt loads are coalesced and B/C rows are broadcast. A single chunk (short inputs, decoding)
// is the plain recurrence. State and arithmetic are float32.
#include <algorithm>

#include "kernels/cuda/scan_chunks.cuh"

namespace lctx::kernels::cuda_impl {
namespace {

constexpr int kBlock = kScanBlock;

template <class T, int NS>
__global__ void scan_pass3(const T* __restrict__ x, const T* __restrict__ dt, const float* __restrict__ A,
                           const T* __restrict__ Bm, const T* __restrict__ C, const float* __restrict__ D,
                           const float* __restrict__ H0, const float* __restrict__ h0, int T_, int Di, int N, int L,
                           T* __restrict__ y, float* __restrict__ h_last) {
  const int d = blockIdx.x * kBlock + threadIdx.x, c = blockIdx.y, b = blockIdx.z, nch = gridDim.y;
  if (d >= Di) return;
  float a[NS], h[NS];
  const size_t o = ((size_t(b) * nch + c) * Di + d) * N;
  const size_t s0 = (size_t(b) * Di + d) * N;
#pragma unroll
  for (int n = 0; n < NS; ++n) {
    a[n] = n < N ? A[size_t(d) * N + n] : 0.f;
    h[n] = n >= N ? 0.f : H0 ? H0[o + n] : h0 ? h0[s0 + n] : 0.f;
  }
  const float dd = D ? D[d] : 0.f;
  const int t0 = c * L, t1 = min(T_, t0 + L);
  for (int t = t0; t < t1; ++t) {
    const size_t row = size_t(b) * T_ + t;
    const float dv = to_f(dt[row * Di + d]), xv = to_f(x[row * Di + d]);
    const T* br = Bm + row * N;
    const T* cr = C + row * N;
    float acc = 0.f;
#pragma unroll
    for (int n = 0; n < NS; ++n)
      if (n < N) {
        h[n] = __expf(dv * a[n]) * h[n] + dv * to_f(br[n]) * xv;
        acc = fmaf(to_f(cr[n]), h[n], acc);
      }
    y[row * Di + d] = from_f<T>(acc + dd * xv);
  }
  if (h_last && c == nch - 1) {  // the last chunk's end state
#pragma unroll
    for (int n = 0; n < NS; ++n)
      if (n < N) h_last[s0 + n] = h[n];
  }
}

// Chunk length of the three-pass forward: `fixed` > 0 (training: the backward's chunks), else enough
// (batch, channel, chunk) threads to fill the GPU (~128K), chunks of 16..256 steps, one chunk when that holds.
int64_t fwd_chunk(int64_t B, int64_t T_, int64_t Di, int64_t fixed) {
  if (fixed > 0) return fixed;
  const int64_t lanes = B * Di;
  int64_t L = std::max<int64_t>(16, std::min<int64_t>(256, (T_ * lanes + 131071) / 131072));
  if (lanes >= 131072 || T_ <= L) L = T_;
  return L;
}

// H (or null): [B, nch, Di, N] float32, receives every chunk's start state (training keeps it for the
// backward); with H the three passes always run.
template <class T, int NS>
void run_scan(const void* x, const void* dt, const float* A, const void* Bm, const void* C, const float* D,
              const float* h0, void* y, float* h_last, int64_t B, int64_t T_, int64_t Di, int64_t N, int64_t L,
              float* H, cudaStream_t stream) {
  const int64_t nch = (T_ + L - 1) / L;
  if (nch > 65535 || B > 65535) throw std::runtime_error("lctx: error: selective_scan CUDA kernel: input too long");
  const dim3 grid{unsigned((Di + kBlock - 1) / kBlock), unsigned(nch), unsigned(B)};
  const T* xt = static_cast<const T*>(x);
  const T* dtt = static_cast<const T*>(dt);
  const T* bt = static_cast<const T*>(Bm);
  const T* ct = static_cast<const T*>(C);
  if (nch == 1 && !H) {
    scan_pass3<T, NS><<<grid, kBlock, 0, stream>>>(xt, dtt, A, bt, ct, D, nullptr, h0, int(T_), int(Di), int(N),
                                                   int(L), static_cast<T*>(y), h_last);
    check_launch("selective_scan kernel launch");
    return;
  }
  float* P = nullptr;
  float* U = H;
  const size_t ws = size_t(B) * nch * Di * N * sizeof(float);
  check(cudaMallocAsync(reinterpret_cast<void**>(&P), ws, stream), "selective_scan workspace");
  if (!H) check(cudaMallocAsync(reinterpret_cast<void**>(&U), ws, stream), "selective_scan workspace");
  launch_chunk_passes<false, T, T, NS>(dt, A, Bm, xt, h0, nullptr, B, T_, Di, N, L, nch, P, U, stream);
  scan_pass3<T, NS><<<grid, kBlock, 0, stream>>>(xt, dtt, A, bt, ct, D, U, nullptr, int(T_), int(Di), int(N),
                                                 int(L), static_cast<T*>(y), h_last);
  check_launch("selective_scan pass 3 launch");
  check(cudaFreeAsync(P, stream), "selective_scan workspace free");
  if (!H) check(cudaFreeAsync(U, stream), "selective_scan workspace free");
}

}  // namespace

void selective_scan_fwd(DType dtp, const void* x, const void* dt, const float* A, const void* Bm, const void* C,
                        const float* D, const float* h0, void* y, float* h_last, int64_t B, int64_t T, int64_t Di,
                        int64_t N, cudaStream_t stream, int64_t chunk, float* H) {
  if (N < 1 || N > 64) throw std::runtime_error("lctx: error: selective_scan CUDA kernel needs 1 <= d_state <= 64");
  if (B * Di == 0) return;
  if (T == 0) {  // no steps: the state passes through
    if (h_last) {
      if (h0) check(cudaMemcpyAsync(h_last, h0, size_t(B * Di * N) * sizeof(float), cudaMemcpyDeviceToDevice, stream),
                    "selective_scan state copy");
      else check(cudaMemsetAsync(h_last, 0, size_t(B * Di * N) * sizeof(float), stream), "selective_scan state");
    }
    return;
  }
  if (T > (1LL << 31) - 1 || Di > (1LL << 31) - 1) throw std::runtime_error("lctx: error: selective_scan: too large");
  const int64_t L = fwd_chunk(B, T, Di, H ? chunk : 0);
  dispatch_dtype(dtp, [&](auto tag) {
    using T_ = decltype(tag);
    if (N <= 8) run_scan<T_, 8>(x, dt, A, Bm, C, D, h0, y, h_last, B, T, Di, N, L, H, stream);
    else if (N <= 16) run_scan<T_, 16>(x, dt, A, Bm, C, D, h0, y, h_last, B, T, Di, N, L, H, stream);
    else if (N <= 32) run_scan<T_, 32>(x, dt, A, Bm, C, D, h0, y, h_last, B, T, Di, N, L, H, stream);
    else run_scan<T_, 64>(x, dt, A, Bm, C, D, h0, y, h_last, B, T, Di, N, L, H, stream);
  });
}

}  // namespace lctx::kernels::cuda_impl
