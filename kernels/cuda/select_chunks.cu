// Landmark scoring + top-k over the visible prefix, fused: the [Tq, N] score matrix never exists.
// Pass 1: a block takes kQ query rows and one contiguous split of the landmarks. Each thread scores one
// landmark against the kQ queries (queries in shared memory, the landmark row read once per block), and a
// score that beats the row's current k-th best (or any score while fewer than k are kept) is appended to
// that row's candidate list in shared memory. Before the list could overflow, one warp per row folds the
// candidates into the row's kept top-k (k rounds of a warp argmax); the k-th kept score becomes the new
// threshold, so after the first tiles almost nothing passes. Each (row, split) writes its top-k.
// Pass 2: one warp per row merges the splits' lists into the final top-k.
// Order: higher score first; equal scores: lower chunk index first.
#include <algorithm>
#include <climits>

#include "kernels/cuda/common.cuh"

namespace lctx::kernels::cuda_impl {
namespace {

constexpr int kQ = 8;          // query rows per block (= warps per block)
constexpr int kThreads = 256;  // landmarks per tile
constexpr int kCap = 448;      // candidate slots per row (a fold happens before a tile could overflow them)
constexpr int kMaxK = 64;
constexpr int kMaxD = 256;

// a beats b: higher score, or equal score and lower index.
__device__ __forceinline__ bool beats(float sa, int ia, float sb, int ib) {
  return sa > sb || (sa == sb && ia < ib);
}

// Warp argmax over (s[0..n), ix[0..n)) skipping taken entries (ix < 0). Returns the winning position or -1.
__device__ int warp_argmax(const float* s, const int* ix, int n, float& best_s, int& best_i) {
  const int lane = threadIdx.x & 31;
  float bs = -INFINITY;
  int bi = INT_MAX, bp = -1;
  for (int e = lane; e < n; e += 32) {
    if (ix[e] < 0) continue;
    if (bp < 0 || beats(s[e], ix[e], bs, bi)) bs = s[e], bi = ix[e], bp = e;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float os = __shfl_xor_sync(kFull, bs, o);
    const int oi = __shfl_xor_sync(kFull, bi, o), op = __shfl_xor_sync(kFull, bp, o);
    if (op >= 0 && (bp < 0 || beats(os, oi, bs, bi))) bs = os, bi = oi, bp = op;
  }
  best_s = bs, best_i = bi;
  return bp;
}

struct RowState {
  float cs[kCap + kMaxK];  // candidates (+ room to fold the kept list in)
  int ci[kCap + kMaxK];
  float ts[kMaxK];         // kept top-k, sorted
  int ti[kMaxK];
  int cnt, kept;
  float thr_s;             // threshold: the k-th kept entry once `kept == k`
  int thr_i;
};

// One warp folds row r's candidates into its kept list.
__device__ void fold(RowState& st, int k) {
  const int lane = threadIdx.x & 31;
  const int n0 = st.cnt;
  for (int e = lane; e < st.kept; e += 32) st.cs[n0 + e] = st.ts[e], st.ci[n0 + e] = st.ti[e];
  __syncwarp();
  const int n = n0 + st.kept;
  int kept = 0;
  for (int r = 0; r < k; ++r) {
    float bs;
    int bi;
    const int bp = warp_argmax(st.cs, st.ci, n, bs, bi);
    if (bp < 0) break;
    if (lane == 0) st.ts[r] = bs, st.ti[r] = bi, st.ci[bp] = -1;
    __syncwarp();
    kept = r + 1;
  }
  if (lane == 0) {
    st.kept = kept;
    st.cnt = 0;
    if (kept == k) st.thr_s = st.ts[k - 1], st.thr_i = st.ti[k - 1];
  }
  __syncwarp();
}

template <class T>
__global__ void __launch_bounds__(kThreads) select_pass1(const T* __restrict__ q, const T* __restrict__ lmk,
                                                          const int64_t* __restrict__ visible, int Tq, int N, int d,
                                                          int k, float scale, int split_len, float* __restrict__ ps,
                                                          int* __restrict__ pi) {
  __shared__ __align__(16) float qs[kQ][kMaxD];
  __shared__ RowState rows[kQ];
  __shared__ int need_fold;
  __shared__ int vis_s[kQ];  // visible chunks per row (0 for rows past Tq)
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int r0 = blockIdx.x * kQ, split = blockIdx.y;
  const int n0 = split * split_len, n1 = min(N, n0 + split_len);
  int vis_max = 0;
  for (int r = 0; r < kQ; ++r) {
    const int row = r0 + r;
    const int64_t vv = row < Tq ? visible[row] : 0;
    const int vis = int(vv < 0 ? 0 : vv > N ? N : vv);
    vis_max = max(vis_max, vis);
    if (threadIdx.x == 0) vis_s[r] = vis;
  }
  for (int e = threadIdx.x; e < kQ * d; e += kThreads) {
    const int r = e / d, c = e - r * d, row = r0 + r;
    qs[r][c] = row < Tq ? to_f(q[size_t(row) * d + c]) : 0.f;
  }
  if (lane == 0) {
    RowState& st = rows[warp];
    st.cnt = 0, st.kept = 0, st.thr_s = -INFINITY, st.thr_i = INT_MAX;
  }
  __syncthreads();
  const int end = min(n1, vis_max);
  for (int base = n0; base < end; base += kThreads) {
    const int j = base + threadIdx.x;
    if (j < end) {
      float acc[kQ];
#pragma unroll
      for (int r = 0; r < kQ; ++r) acc[r] = 0.f;
      const T* lr = lmk + size_t(j) * d;
      if (d % 8 == 0 && reinterpret_cast<uintptr_t>(lmk) % 16 == 0) {
        for (int c = 0; c < d; c += 8) {
          float x[8];
          load8(lr + c, x);
#pragma unroll
          for (int r = 0; r < kQ; ++r) {  // two 16-byte broadcast reads of the query per 8 multiply-adds
            const float4 a = *reinterpret_cast<const float4*>(&qs[r][c]);
            const float4 b = *reinterpret_cast<const float4*>(&qs[r][c + 4]);
            float s = acc[r];
            s = fmaf(x[0], a.x, s), s = fmaf(x[1], a.y, s), s = fmaf(x[2], a.z, s), s = fmaf(x[3], a.w, s);
            s = fmaf(x[4], b.x, s), s = fmaf(x[5], b.y, s), s = fmaf(x[6], b.z, s), s = fmaf(x[7], b.w, s);
            acc[r] = s;
          }
        }
      } else {
        for (int c = 0; c < d; ++c) {
          const float x = to_f(lr[c]);
#pragma unroll
          for (int r = 0; r < kQ; ++r) acc[r] = fmaf(x, qs[r][c], acc[r]);
        }
      }
#pragma unroll
      for (int r = 0; r < kQ; ++r) {
        if (j >= vis_s[r]) continue;  // also rows past Tq (vis_s = 0)
        RowState& st = rows[r];
        const float sc = acc[r] * scale;
        if (st.kept < k || beats(sc, j, st.thr_s, st.thr_i)) {
          const int pos = atomicAdd(&st.cnt, 1);
          st.cs[pos] = sc, st.ci[pos] = j;
        }
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int f = 0;
      for (int r = 0; r < kQ; ++r) f |= (rows[r].cnt > kCap - kThreads) << r;
      need_fold = f;
    }
    __syncthreads();
    if ((need_fold >> warp) & 1) fold(rows[warp], k);
    __syncthreads();
  }
  if (rows[warp].cnt > 0) fold(rows[warp], k);
  __syncwarp();
  const int row = r0 + warp;
  if (row >= Tq) return;
  const RowState& st = rows[warp];
  const size_t o = (size_t(row) * gridDim.y + split) * k;
  for (int e = lane; e < k; e += 32) {
    ps[o + e] = e < st.kept ? st.ts[e] : -INFINITY;
    pi[o + e] = e < st.kept ? st.ti[e] : -1;
  }
}

// One warp per row: the splits' lists -> final top-kk. Entries with index -1 are empty.
__global__ void select_pass2(const float* __restrict__ ps, const int* __restrict__ pi, int Tq, int nsplit, int k,
                             int kk, int64_t* __restrict__ idx, float* __restrict__ scores) {
  extern __shared__ unsigned char raw[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
  const int row = blockIdx.x * nwarps + warp;
  const int n = nsplit * k;
  float* s = reinterpret_cast<float*>(raw) + size_t(warp) * n;
  int* ix = reinterpret_cast<int*>(reinterpret_cast<float*>(raw) + size_t(nwarps) * n) + size_t(warp) * n;
  if (row >= Tq) return;
  for (int e = lane; e < n; e += 32) s[e] = ps[size_t(row) * n + e], ix[e] = pi[size_t(row) * n + e];
  __syncwarp();
  for (int r = 0; r < kk; ++r) {
    float bs;
    int bi;
    const int bp = warp_argmax(s, ix, n, bs, bi);
    if (lane == 0) {
      idx[size_t(row) * kk + r] = bp < 0 ? -1 : bi;
      scores[size_t(row) * kk + r] = bp < 0 ? -INFINITY : bs;
      if (bp >= 0) ix[bp] = -1;
    }
    __syncwarp();
  }
}

}  // namespace

void select_topk(DType dt, const void* q, const void* landmarks, const int64_t* visible, int64_t Tq, int64_t N,
                 int64_t d, int64_t k, float scale, int64_t* idx, float* scores, int sm_count, cudaStream_t stream) {
  const int64_t kk = std::min(k, N);
  if (Tq == 0 || kk <= 0) return;
  if (k > kMaxK || d > kMaxD || d < 1) throw std::runtime_error("lctx: error: select_chunks CUDA kernel needs k <= 64, d <= 256");
  if (N > (1LL << 31) - 1 - kThreads || Tq > (1LL << 31) / kMaxK)
    throw std::runtime_error("lctx: error: select_chunks CUDA kernel: too many landmarks or rows");
  const int64_t qblocks = (Tq + kQ - 1) / kQ;
  // splits: enough blocks for ~4 waves, each split at least 1024 landmarks, at most 64 splits
  int64_t nsplit = std::max<int64_t>(1, (4 * int64_t(std::max(sm_count, 1)) + qblocks - 1) / qblocks);
  nsplit = std::min<int64_t>(std::min<int64_t>(nsplit, (N + 1023) / 1024), 64);
  nsplit = std::max<int64_t>(nsplit, 1);
  if (qblocks > 65535LL * 65535LL) throw std::runtime_error("lctx: error: select_chunks CUDA kernel: too many rows");
  const int64_t split_len = (N + nsplit - 1) / nsplit;
  float* ps = nullptr;
  int* pi = nullptr;
  const size_t parts = size_t(Tq) * nsplit * k;
  check(cudaMallocAsync(reinterpret_cast<void**>(&ps), parts * sizeof(float), stream), "select_chunks workspace");
  check(cudaMallocAsync(reinterpret_cast<void**>(&pi), parts * sizeof(int), stream), "select_chunks workspace");
  dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const dim3 grid{unsigned(qblocks), unsigned(nsplit), 1u};
    select_pass1<T><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(q), static_cast<const T*>(landmarks),
                                                   visible, int(Tq), int(N), int(d), int(k), scale,
                                                   int(split_len), ps, pi);
    check_launch("select_chunks pass 1 launch");
  });
  const int nwarps = 4;
  const size_t smem = size_t(nwarps) * nsplit * k * (sizeof(float) + sizeof(int));
  if (smem > 48 * 1024)
    check(cudaFuncSetAttribute(select_pass2, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
          "select_chunks: shared memory attribute");
  select_pass2<<<unsigned((Tq + nwarps - 1) / nwarps), nwarps * 32, smem, stream>>>(ps, pi, int(Tq), int(nsplit),
                                                                                    int(k), int(kk), idx, scores);
  check_launch("select_chunks pass 2 launch");
  check(cudaFreeAsync(ps, stream), "select_chunks workspace free");
  check(cudaFreeAsync(pi, stream), "select_chunks workspace free");
}

}  // namespace lctx::kernels::cuda_impl
