// Mamba selective scan, backward. The forward (selective_scan.cu, training mode) keeps only the state at
// the start of every time chunk of L steps, H [B, nch, Di, N]; nothing of size [B, T, Di, N] is stored.
// With q_t = dL/dh_{t-1} (the gradient that leaves step t towards the past), the adjoint recurrence is
//   g_t = C_t dy_t + q_{t+1},   q_t = a_t g_t,   a_t = exp(dt_t A),
// linear in q like the forward is in h, so it is chunked the same way, in reverse:
//   pass 1: per (batch, channel, chunk) the chunk's q at its first step from a zero incoming gradient (Uz)
//           and its decay P = exp(A * sum dt);
//   pass 2: per (batch, channel, state) a sequential reverse carry from dL/dh_last: E_c, the gradient that
//           enters chunk c from the future (Uz becomes E in place); the carry past chunk 0 is dL/dh0
//           (passes 1 and 2 are the forward's, reversed: scan_chunks.cuh);
//   pass 3: per (batch, channel, state, chunk) one thread reruns the chunk forward from H_c with its L
//           states and decays in registers, then walks it backwards from E_c and forms every gradient:
//             dC_t[n] += dy_t h_t[n]        dB_t[n] += g_t[n] dt_t x_t      (sums over channels)
//             dx_t = dt_t sum_n g_t[n] B_t[n]
//             ddt_t = sum_n A[n] a_t[n] h_{t-1}[n] g_t[n] + x_t sum_n g_t[n] B_t[n]   (sums over states)
//             dA[n] += dt_t a_t[n] h_{t-1}[n] g_t[n]                               (sum over batch, time)
// Pass 3's threads of one channel are LPC consecutive lanes (one or two states each), so the sums over
// states are warp shuffles; the sums over the block's channels go through shared memory, and each block
// writes its partial dB/dC rows [L, 2, N] (summed over its channels) and its dA to partial buffers that the
// caller reduces (no global atomics, deterministic). The skip term D is the caller's (O(B T Di) LibTorch).
#include <algorithm>

#include "kernels/cuda/scan_chunks.cuh"

namespace lctx::kernels::cuda_impl {
namespace {

// Pass 3. LPC lanes per channel (a power of two, 2..32), SPT states per lane (state n = slot + LPC * j),
// CH channels per block, L steps per chunk.
template <int LPC, int SPT, int L>
struct Tile {
  static constexpr int kCh = LPC == 32 ? 8 : 32;  // channels per block
  static constexpr int kThreads = kCh * LPC;
  static constexpr int kNP = LPC * SPT;           // padded states
  static constexpr int kCpw = 32 / LPC;           // channels per warp
};

template <class T, int LPC, int SPT, int L>
__global__ void __launch_bounds__(Tile<LPC, SPT, L>::kThreads)
    bwd_pass3(const T* __restrict__ x, const T* __restrict__ dt, const float* __restrict__ A, const T* __restrict__ Bm,
              const T* __restrict__ C, const float* __restrict__ H, const float* __restrict__ E,
              const float* __restrict__ dy, int T_, int Di, int N, float* __restrict__ dx, float* __restrict__ ddt,
              float* __restrict__ dA_part, float* __restrict__ dBC_part) {
  using Tl = Tile<LPC, SPT, L>;
  constexpr int CH = Tl::kCh, NP = Tl::kNP;
  __shared__ float sx[L][CH], sdt[L][CH], sdy[L][CH];
  __shared__ float sB[L][NP], sC[L][NP];
  __shared__ float sBC[L][2][NP];        // sum over the block's channels: [.][0] dC, [.][1] dB
  __shared__ float sgB[L][CH], spA[L][CH];  // per channel: sum_n g B, sum_n A a h_{t-1} g
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int group = lane / LPC, slot = lane % LPC, cl = warp * Tl::kCpw + group;
  const int c = blockIdx.y, b = blockIdx.z, nch = gridDim.y, d0 = blockIdx.x * CH, d = d0 + cl;
  const int t0 = c * L;
  // Stage the chunk's inputs (zeros past T or Di: identity steps without gradient).
  for (int e = tid; e < L * CH; e += Tl::kThreads) {
    const int i = e / CH, k = e - i * CH, t = t0 + i, dd = d0 + k;
    const bool ok = t < T_ && dd < Di;
    const size_t o = (size_t(b) * T_ + t) * Di + dd;
    sx[i][k] = ok ? to_f(x[o]) : 0.f;
    sdt[i][k] = ok ? to_f(dt[o]) : 0.f;
    sdy[i][k] = ok ? dy[o] : 0.f;
  }
  for (int e = tid; e < L * NP; e += Tl::kThreads) {
    const int i = e / NP, n = e - i * NP, t = t0 + i;
    const bool ok = t < T_ && n < N;
    const size_t o = (size_t(b) * T_ + t) * N + n;
    sB[i][n] = ok ? to_f(Bm[o]) : 0.f;
    sC[i][n] = ok ? to_f(C[o]) : 0.f;
    sBC[i][0][n] = 0.f, sBC[i][1][n] = 0.f;
  }
  __syncthreads();

  float a_[SPT], h0[SPT], g[SPT], dA[SPT];
  float hs[L][SPT], as[L][SPT];
  const bool dok = d < Di;
  const size_t so = ((size_t(b) * nch + c) * Di + (dok ? d : 0)) * N;
#pragma unroll
  for (int j = 0; j < SPT; ++j) {
    const int n = slot + LPC * j;
    const bool ok = dok && n < N;
    a_[j] = ok ? A[size_t(d) * N + n] : 0.f;
    h0[j] = ok ? H[so + n] : 0.f;
    g[j] = ok ? E[so + n] : 0.f;
    dA[j] = 0.f;
  }
  // Forward over the chunk: states and decays in registers.
#pragma unroll
  for (int i = 0; i < L; ++i) {
    const float dv = sdt[i][cl], dx_ = dv * sx[i][cl];
#pragma unroll
    for (int j = 0; j < SPT; ++j) {
      const float a = __expf(dv * a_[j]);
      as[i][j] = a;
      hs[i][j] = fmaf(a, i ? hs[i - 1][j] : h0[j], dx_ * sB[i][slot + LPC * j]);
    }
  }
  // Backward over the chunk.
#pragma unroll
  for (int i = L - 1; i >= 0; --i) {
    const float dv = sdt[i][cl], xv = sx[i][cl], gy = sdy[i][cl];
    float gB = 0.f, pA = 0.f, pC[SPT], pB[SPT];
#pragma unroll
    for (int j = 0; j < SPT; ++j) {
      const int n = slot + LPC * j;
      const float bb = sB[i][n];
      g[j] = fmaf(sC[i][n], gy, g[j]);
      const float hp = i ? hs[i - 1][j] : h0[j];
      const float t1 = g[j] * as[i][j] * hp;
      pC[j] = gy * hs[i][j];
      pB[j] = g[j] * dv * xv;
      gB = fmaf(g[j], bb, gB);
      pA = fmaf(a_[j], t1, pA);
      dA[j] = fmaf(dv, t1, dA[j]);
      g[j] *= as[i][j];
    }
    // Sums over the channel's states (LPC lanes): the pair (gB, pA) split over lane bit 0, then halved.
    {
      const bool odd = slot & 1;
      float keep = odd ? pA : gB;
      keep += __shfl_xor_sync(kFull, odd ? gB : pA, 1);
#pragma unroll
      for (int o = 2; o < LPC; o <<= 1) keep += __shfl_xor_sync(kFull, keep, o);
      if (slot == 0) sgB[i][cl] = keep;
      if (slot == 1) spA[i][cl] = keep;
    }
    // Sums over channels: the warp's channels by shuffles (pair split over the channel bit), then the
    // block's warps in shared memory.
    if constexpr (Tl::kCpw > 1) {
      const bool odd = group & 1;
      float keep = odd ? pB[0] : pC[0];
      keep += __shfl_xor_sync(kFull, odd ? pC[0] : pB[0], LPC);
#pragma unroll
      for (int o = 2 * LPC; o < 32; o <<= 1) keep += __shfl_xor_sync(kFull, keep, o);
      if (group < 2) atomicAdd(&sBC[i][group][slot], keep);
    } else {
#pragma unroll
      for (int j = 0; j < SPT; ++j) {
        atomicAdd(&sBC[i][0][slot + LPC * j], pC[j]);
        atomicAdd(&sBC[i][1][slot + LPC * j], pB[j]);
      }
    }
  }
#pragma unroll
  for (int j = 0; j < SPT; ++j) {
    const int n = slot + LPC * j;
    if (dok && n < N) dA_part[so + n] = dA[j];
  }
  __syncthreads();
  for (int e = tid; e < L * CH; e += Tl::kThreads) {
    const int i = e / CH, k = e - i * CH, t = t0 + i, dd = d0 + k;
    if (t < T_ && dd < Di) {
      const size_t o = (size_t(b) * T_ + t) * Di + dd;
      const float gb = sgB[i][k];
      dx[o] = sdt[i][k] * gb;
      ddt[o] = fmaf(sx[i][k], gb, spA[i][k]);
    }
  }
  // dBC_part [G, B, T, 2, N], G = blockIdx.x
  const size_t pb = (size_t(blockIdx.x) * gridDim.z + b) * T_;
  for (int e = tid; e < L * 2 * N; e += Tl::kThreads) {
    const int i = e / (2 * N), r = e - i * 2 * N, k = r / N, n = r - k * N, t = t0 + i;
    if (t < T_) dBC_part[(pb + t) * 2 * N + r] = sBC[i][k][n];
  }
}

template <class T, int LPC, int SPT, int L>
void launch_pass3(const void* x, const void* dt, const float* A, const void* Bm, const void* C, const float* H,
                  const float* E, const float* dy, int64_t B, int64_t T_, int64_t Di, int64_t N, int64_t nch, float* dx,
                  float* ddt, float* dA_part, float* dBC_part, cudaStream_t stream) {
  using Tl = Tile<LPC, SPT, L>;
  const dim3 grid{unsigned((Di + Tl::kCh - 1) / Tl::kCh), unsigned(nch), unsigned(B)};
  bwd_pass3<T, LPC, SPT, L><<<grid, Tl::kThreads, 0, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(dt), A, static_cast<const T*>(Bm), static_cast<const T*>(C), H,
      E, dy, int(T_), int(Di), int(N), dx, ddt, dA_part, dBC_part);
  check_launch("selective_scan backward pass 3 launch");
}

template <class T, int NS>
void run_bwd(const void* x, const void* dt, const float* A, const void* Bm, const void* C, const float* H,
             const float* dy, const float* dh_last, float* dx, float* ddt, float* dA_part, float* dBC_part, float* dh0,
             int64_t B, int64_t T_, int64_t Di, int64_t N, int64_t L, cudaStream_t stream) {
  const int64_t nch = (T_ + L - 1) / L;
  float* P = nullptr;
  float* U = nullptr;
  const size_t ws = size_t(B) * nch * Di * N * sizeof(float);
  check(cudaMallocAsync(reinterpret_cast<void**>(&P), ws, stream), "selective_scan backward workspace");
  check(cudaMallocAsync(reinterpret_cast<void**>(&U), ws, stream), "selective_scan backward workspace");
  launch_chunk_passes<true, T, float, NS>(dt, A, C, dy, dh_last, dh0, B, T_, Di, N, L, nch, P, U, stream);
  auto p3 = [&](auto lpc, auto spt, auto len) {
    launch_pass3<T, decltype(lpc)::value, decltype(spt)::value, decltype(len)::value>(
        x, dt, A, Bm, C, H, U, dy, B, T_, Di, N, nch, dx, ddt, dA_part, dBC_part, stream);
  };
  using std::integral_constant;
  if (N <= 2) p3(integral_constant<int, 2>{}, integral_constant<int, 1>{}, integral_constant<int, 32>{});
  else if (N <= 4) p3(integral_constant<int, 4>{}, integral_constant<int, 1>{}, integral_constant<int, 32>{});
  else if (N <= 8) p3(integral_constant<int, 8>{}, integral_constant<int, 1>{}, integral_constant<int, 32>{});
  else if (N <= 16) p3(integral_constant<int, 16>{}, integral_constant<int, 1>{}, integral_constant<int, 32>{});
  else if (N <= 32) p3(integral_constant<int, 32>{}, integral_constant<int, 1>{}, integral_constant<int, 32>{});
  else p3(integral_constant<int, 32>{}, integral_constant<int, 2>{}, integral_constant<int, 16>{});
  check(cudaFreeAsync(P, stream), "selective_scan backward workspace free");
  check(cudaFreeAsync(U, stream), "selective_scan backward workspace free");
}

}  // namespace

int64_t selective_scan_train_chunk(int64_t N) { return N <= 32 ? 32 : 16; }
int64_t selective_scan_bwd_groups(int64_t Di, int64_t N) {
  const int64_t ch = N <= 16 ? 32 : 8;  // Tile<LPC, SPT, L>::kCh
  return (Di + ch - 1) / ch;
}

void selective_scan_bwd(DType dtp, const void* x, const void* dt, const float* A, const void* Bm, const void* C,
                        const float* H, const float* dy, const float* dh_last, float* dx, float* ddt, float* dA_part,
                        float* dBC_part, float* dh0, int64_t B, int64_t T, int64_t Di, int64_t N, cudaStream_t stream) {
  if (N < 1 || N > 64) throw std::runtime_error("lctx: error: selective_scan CUDA kernel needs 1 <= d_state <= 64");
  if (B * Di == 0 || T == 0) throw std::runtime_error("lctx: error: selective_scan backward: empty input");
  const int64_t L = selective_scan_train_chunk(N), nch = (T + L - 1) / L;
  if (nch > 65535 || B > 65535 || T > (1LL << 31) - 1)
    throw std::runtime_error("lctx: error: selective_scan CUDA kernel: input too long");
  dispatch_dtype(dtp, [&](auto tag) {
    using T_ = decltype(tag);
    if (N <= 8) run_bwd<T_, 8>(x, dt, A, Bm, C, H, dy, dh_last, dx, ddt, dA_part, dBC_part, dh0, B, T, Di, N, L, stream);
    else if (N <= 16) run_bwd<T_, 16>(x, dt, A, Bm, C, H, dy, dh_last, dx, ddt, dA_part, dBC_part, dh0, B, T, Di, N, L, stream);
    else if (N <= 32) run_bwd<T_, 32>(x, dt, A, Bm, C, H, dy, dh_last, dx, ddt, dA_part, dBC_part, dh0, B, T, Di, N, L, stream);
    else run_bwd<T_, 64>(x, dt, A, Bm, C, H, dy, dh_last, dx, ddt, dA_part, dBC_part, dh0, B, T, Di, N, L, stream);
  });
}

}  // namespace lctx::kernels::cuda_impl
