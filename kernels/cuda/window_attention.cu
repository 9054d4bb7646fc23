// Windowed causal attention, forward: a flash-style kernel with an online softmax over the window.
// One block = 8 consecutive query rows of one (batch, head), one warp per row. The block walks the union of
// its rows' windows in tiles of 32 keys staged in shared memory (float32), so no [Tq, Tk] band is ever
// materialised. In a tile, lane j scores key j against the warp's query (the query sits in shared memory,
// read by broadcast); the output accumulator is split over the lanes by columns (column lane + 32 c).
#include "kernels/cuda/common.cuh"

namespace lctx::kernels::cuda_impl {
namespace {

constexpr int kRows = 8;   // query rows (warps) per block
constexpr int kTile = 32;  // keys per shared-memory tile

template <class T, int NC>
__global__ void __launch_bounds__(kRows * 32, 1) window_fwd_kernel(const T* __restrict__ q, const T* __restrict__ k,
                                                                 const T* __restrict__ v, T* __restrict__ out,
                                                                 int H, int Tq, int Tk, int D, int window,
                                                                 long long q_pos0, long long k_pos0, float scale) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const int ld = tile_ld(D);
  float* ks = smem;
  float* vs = ks + kTile * ld;
  float* qs = vs + kTile * ld;  // [kRows][D]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int bh = blockIdx.y;    // b * H + h
  const int i0 = blockIdx.x * kRows;
  const int i = i0 + warp;      // this warp's query row
  const bool row_ok = i < Tq;
  const T* qb = q + (size_t(bh) * Tq) * D;
  const T* kb = k + (size_t(bh) * Tk) * D;
  const T* vb = v + (size_t(bh) * Tk) * D;
  for (int c = lane; c < D; c += 32) qs[warp * D + c] = row_ok ? to_f(qb[size_t(i) * D + c]) * scale : 0.f;

  // Key index range (relative to k) of the block's rows: [j_lo, j_hi).
  const int i_last = min(Tq, i0 + kRows) - 1;
  const long long p_first = q_pos0 + i0, p_last = q_pos0 + i_last;
  const int j_lo = int(max(0LL, p_first - window + 1 - k_pos0));
  const int j_hi = int(min((long long)Tk, p_last + 1 - k_pos0));
  const long long p = q_pos0 + i;  // this row's position; keys at p - window + 1 .. p

  float m = -INFINITY, l = 0.f;  // running max and (per-lane partial) denominator
  float acc[NC];
#pragma unroll
  for (int c = 0; c < NC; ++c) acc[c] = 0.f;

  for (int j0 = j_lo; j0 < j_hi; j0 += kTile) {
    const int nk = min(kTile, j_hi - j0);
    __syncthreads();  // previous tile fully consumed (and qs written, first time)
    stage_rows(kb + size_t(j0) * D, nk, D, ks, ld);
    stage_rows(vb + size_t(j0) * D, nk, D, vs, ld);
    __syncthreads();
    if (!row_ok) continue;
    // score of key j0 + lane
    const long long kp = k_pos0 + j0 + lane;
    const bool key_ok = lane < nk && kp <= p && kp > p - window;
    float s = -INFINITY;
    if (key_ok) s = dot_row(qs + warp * D, ks + lane * ld, D);
    const float m_new = fmaxf(m, warp_max(s));
    if (m_new == -INFINITY) continue;  // nothing visible yet for this row
    const float alpha = __expf(m - m_new);  // m = -inf the first time: alpha = 0
    const float pj = key_ok ? __expf(s - m_new) : 0.f;
    l = l * alpha + pj;
#pragma unroll
    for (int c = 0; c < NC; ++c) acc[c] *= alpha;
    for (int r = 0; r < nk; ++r) {
      const float pr = __shfl_sync(kFull, pj, r);
      const float* vr = vs + r * ld;
#pragma unroll
      for (int c = 0; c < NC; ++c) {
        const int col = lane + 32 * c;
        if (col < D) acc[c] = fmaf(pr, vr[col], acc[c]);
      }
    }
    m = m_new;
  }
  if (!row_ok) return;
  const float denom = warp_sum(l);
  const float inv = denom > 0.f ? 1.f / denom : 0.f;
  T* ob = out + (size_t(bh) * Tq + i) * D;
#pragma unroll
  for (int c = 0; c < NC; ++c) {
    const int col = lane + 32 * c;
    if (col < D) ob[col] = from_f<T>(acc[c] * inv);
  }
}

template <class T, int NC>
void launch_window(const void* q, const void* k, const void* v, void* out, int64_t B, int64_t H, int64_t Tq,
                   int64_t Tk, int64_t D, int64_t window, int64_t q_pos0, int64_t k_pos0, float scale,
                   cudaStream_t stream) {
  const size_t smem = size_t(2 * kTile * tile_ld(int(D)) + kRows * D) * sizeof(float);
  auto kern = window_fwd_kernel<T, NC>;
  if (smem > 48 * 1024)
    check(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
          "window_attention: shared memory attribute");
  dim3 grid(unsigned((Tq + kRows - 1) / kRows), unsigned(B * H));
  kern<<<grid, kRows * 32, smem, stream>>>(static_cast<const T*>(q), static_cast<const T*>(k),
                                           static_cast<const T*>(v), static_cast<T*>(out), int(H), int(Tq),
                                           int(Tk), int(D), int(std::min<int64_t>(window, int64_t(1) << 30)),
                                           (long long)q_pos0, (long long)k_pos0, scale);
  check_launch("window_attention kernel launch");
}

}  // namespace

void window_attention_fwd(DType dt, const void* q, const void* k, const void* v, void* out, int64_t B, int64_t H,
                          int64_t Tq, int64_t Tk, int64_t D, int64_t window, int64_t q_pos0, int64_t k_pos0,
                          float scale, cudaStream_t stream) {
  if (B * H == 0 || Tq == 0) return;
  if (D < 1 || D > 256) throw std::runtime_error("lctx: error: window_attention CUDA kernel needs head size <= 256");
  if (B * H > 65535 || Tq > (1LL << 31) - 8 || Tk > (1LL << 31) - 8)
    throw std::runtime_error("lctx: error: window_attention CUDA kernel: tensor too large");
  dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    switch (head_cols(D)) {
      case 1: launch_window<T, 1>(q, k, v, out, B, H, Tq, Tk, D, window, q_pos0, k_pos0, scale, stream); break;
      case 2: launch_window<T, 2>(q, k, v, out, B, H, Tq, Tk, D, window, q_pos0, k_pos0, scale, stream); break;
      case 4: launch_window<T, 4>(q, k, v, out, B, H, Tq, Tk, D, window, q_pos0, k_pos0, scale, stream); break;
      default: launch_window<T, 8>(q, k, v, out, B, H, Tq, Tk, D, window, q_pos0, k_pos0, scale, stream); break;
    }
  });
}

}  // namespace lctx::kernels::cuda_impl
