// Attention over selected chunks (HSA), forward and backward, with grouped-query heads.
// One block = one (token t, kv head, batch b); its warps are the query heads of that kv head (up to 16 per
// pass; more heads take several passes). For every selected slot j the block stages the chunk's keys and
// values [S, D] in shared memory (float32, padded rows: tile_ld), then each warp scores its head's
// query against the S keys (lane s scores keys s, s + 32, ...), takes the softmax inside the chunk (fusion
// "chunk") or folds the slot into an online softmax across slots (fusion "joint", the slot weight being a
// logit bias) and accumulates P V over columns (lane c owns columns c, c + 32, ...).
// Backward recomputes the scores per slot; dq is accumulated in registers; each warp leaves its ds and dv
// coefficients of the slot in shared memory, the block forms dk/dv of the slot as a [S, heads] x [heads, D]
// product (summing its heads) and adds them to the float32 dk/dv with one atomic per element per block; dw
// per slot is the warp-reduced sum over the heads (atomic over kv heads).
#include "kernels/cuda/common.cuh"

namespace lctx::kernels::cuda_impl {
namespace {

constexpr int kMaxWarps = 16;
constexpr int kMaxS = 128;          // keys per chunk: at most 4 per lane
constexpr int kKeysPerLane = kMaxS / 32;

struct Dims {
  int B, H, Hkv, T, D, N, S, K, G;
};

// Stage chunk `c` (kv head hk of batch b) into ks/vs (padded rows).
template <class T>
__device__ void stage_chunk(const T* __restrict__ k, const T* __restrict__ v, const Dims& d, int b, int c, int hk,
                            float* ks, float* vs) {
  const int ld = tile_ld(d.D);
  const size_t base = ((size_t(b) * d.N + c) * d.Hkv + hk) * size_t(d.S) * d.D;
  stage_rows(k + base, d.S, d.D, ks, ld);
  stage_rows(v + base, d.S, d.D, vs, ld);
}

// Scores of the warp's query (qs, already multiplied by the scale) against the staged keys: sc[i] for key
// lane + 32 i (-inf past S), plus `bias`.
__device__ __forceinline__ void score_keys(const float* qs, const float* ks, int D, int S, float bias,
                                           float (&sc)[kKeysPerLane]) {
  const int lane = threadIdx.x & 31, ld = tile_ld(D);
#pragma unroll
  for (int i = 0; i < kKeysPerLane; ++i) {
    const int s = lane + 32 * i;
    if (s < S) {
      sc[i] = dot_row(qs, ks + s * ld, D) + bias;
    } else {
      sc[i] = -INFINITY;
    }
  }
}

// acc[c] += sum_s p_s * vs[s][lane + 32 c] (p_s held by lane s % 32 in p[s / 32]).
template <int NC>
__device__ __forceinline__ void accumulate_pv(const float (&p)[kKeysPerLane], const float* vs, int D, int S,
                                              float (&acc)[NC]) {
  const int lane = threadIdx.x & 31, ld = tile_ld(D);
#pragma unroll
  for (int i = 0; i < kKeysPerLane; ++i) {
    if (32 * i >= S) break;
    const int n = min(32, S - 32 * i);
    for (int r = 0; r < n; ++r) {
      const float pr = __shfl_sync(kFull, p[i], r);
      const float* vr = vs + (32 * i + r) * ld;
#pragma unroll
      for (int c = 0; c < NC; ++c) {
        const int col = lane + 32 * c;
        if (col < D) acc[c] = fmaf(pr, vr[col], acc[c]);
      }
    }
  }
}

template <class TQ, class T, int NC>
__global__ void chunk_fwd_kernel(const TQ* __restrict__ q, const int64_t* __restrict__ idx, const float* __restrict__ w,
                                 const T* __restrict__ k, const T* __restrict__ v, void* __restrict__ out,
                                 bool out_f32, float* __restrict__ lse, Dims d, float scale, bool joint) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const int ld = tile_ld(d.D);
  float* ks = smem;
  float* vs = ks + d.S * ld;
  float* qsm = vs + d.S * ld;  // [warps][D]
  const int t = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
  const int64_t* irow = idx + (size_t(b) * d.T + t) * d.K;
  const float* wrow = w + (size_t(b) * d.T + t) * d.K;
  float* qs = qsm + warp * d.D;

  for (int g0 = 0; g0 < d.G; g0 += nwarps) {  // passes over the heads of this kv head
    const int g = g0 + warp;
    const bool head_ok = g < d.G;
    const int h = hk * d.G + g;
    const size_t qrow = ((size_t(b) * d.H + h) * d.T + t) * d.D;
    __syncthreads();
    for (int c = lane; c < d.D; c += 32) qs[c] = head_ok ? to_f(q[qrow + c]) * scale : 0.f;
    float acc[NC];
#pragma unroll
    for (int c = 0; c < NC; ++c) acc[c] = 0.f;
    float m_run = -INFINITY, l_run = 0.f;  // joint: online softmax state (l_run per lane)
    for (int j = 0; j < d.K; ++j) {
      const int64_t cj = irow[j];
      const float wj = wrow[j];
      if (cj < 0 || cj >= d.N || (joint && wj == -INFINITY)) continue;  // block-uniform
      __syncthreads();
      stage_chunk(k, v, d, b, int(cj), hk, ks, vs);
      __syncthreads();
      if (!head_ok) continue;
      float sc[kKeysPerLane], p[kKeysPerLane];
      score_keys(qs, ks, d.D, d.S, joint ? wj : 0.f, sc);
      float mx = sc[0];
#pragma unroll
      for (int i = 1; i < kKeysPerLane; ++i) mx = fmaxf(mx, sc[i]);
      mx = warp_max(mx);
      if (!joint) {
        float ps = 0.f;
#pragma unroll
        for (int i = 0; i < kKeysPerLane; ++i) p[i] = sc[i] == -INFINITY ? 0.f : __expf(sc[i] - mx), ps += p[i];
        const float f = wj / warp_sum(ps);
#pragma unroll
        for (int i = 0; i < kKeysPerLane; ++i) p[i] *= f;
      } else {
        const float m_new = fmaxf(m_run, mx);
        const float alpha = __expf(m_run - m_new);
        float ps = 0.f;
#pragma unroll
        for (int i = 0; i < kKeysPerLane; ++i) p[i] = sc[i] == -INFINITY ? 0.f : __expf(sc[i] - m_new), ps += p[i];
        l_run = l_run * alpha + ps;
#pragma unroll
        for (int c = 0; c < NC; ++c) acc[c] *= alpha;
        m_run = m_new;
      }
      accumulate_pv<NC>(p, vs, d.D, d.S, acc);
    }
    if (!head_ok) continue;
    float f = 1.f;
    if (joint) {
      const float l = warp_sum(l_run);
      f = l > 0.f ? 1.f / l : 0.f;
      if (lse && lane == 0) lse[(size_t(b) * d.H + h) * d.T + t] = l > 0.f ? m_run + logf(l) : -INFINITY;
    }
#pragma unroll
    for (int c = 0; c < NC; ++c) {
      const int col = lane + 32 * c;
      if (col >= d.D) continue;
      if (out_f32) static_cast<float*>(out)[qrow + col] = acc[c] * f;
      else static_cast<TQ*>(out)[qrow + col] = from_f<TQ>(acc[c] * f);
    }
  }
}

template <class T, int NC>
__global__ void chunk_bwd_kernel(const T* __restrict__ q, const int64_t* __restrict__ idx, const float* __restrict__ w,
                                 const T* __restrict__ k, const T* __restrict__ v, const float* __restrict__ out32,
                                 const float* __restrict__ lse, const float* __restrict__ dout, T* __restrict__ dq,
                                 float* __restrict__ dk, float* __restrict__ dv, float* __restrict__ dw, Dims d,
                                 float scale, bool joint) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const int ld = tile_ld(d.D);
  float* ks = smem;
  float* vs = ks + d.S * ld;
  float* qsm = vs + d.S * ld;            // [warps][D]  query * scale
  float* dosm = qsm + kMaxWarps * d.D;   // [warps][D]  dout
  float* dssm = dosm + kMaxWarps * d.D;  // [warps][S]  ds of the current slot
  float* pvsm = dssm + kMaxWarps * d.S;  // [warps][S]  the dv coefficients of the current slot
  const int t = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
  const int64_t* irow = idx + (size_t(b) * d.T + t) * d.K;
  const float* wrow = w + (size_t(b) * d.T + t) * d.K;
  float* qs = qsm + warp * d.D;
  float* dos = dosm + warp * d.D;

  for (int g0 = 0; g0 < d.G; g0 += nwarps) {
    const int g = g0 + warp;
    const bool head_ok = g < d.G;
    const int h = hk * d.G + g;
    const size_t qrow = ((size_t(b) * d.H + h) * d.T + t) * d.D;
    __syncthreads();
    float dt_row = 0.f;  // joint: sum_c dout * out
    for (int c = lane; c < d.D; c += 32) {
      qs[c] = head_ok ? to_f(q[qrow + c]) * scale : 0.f;
      dos[c] = head_ok ? dout[qrow + c] : 0.f;
      if (joint && head_ok) dt_row += dos[c] * out32[qrow + c];
    }
    dt_row = warp_sum(dt_row);
    const float row_lse = (joint && head_ok) ? lse[(size_t(b) * d.H + h) * d.T + t] : 0.f;
    float dqa[NC];
#pragma unroll
    for (int c = 0; c < NC; ++c) dqa[c] = 0.f;
    for (int j = 0; j < d.K; ++j) {
      const int64_t cj = irow[j];
      const float wj = wrow[j];
      if (cj < 0 || cj >= d.N || (joint && wj == -INFINITY)) continue;  // block-uniform
      __syncthreads();
      stage_chunk(k, v, d, b, int(cj), hk, ks, vs);
      __syncthreads();
      if (head_ok && !(joint && row_lse == -INFINITY)) {
        float sc[kKeysPerLane], p[kKeysPerLane];
        score_keys(qs, ks, d.D, d.S, joint ? wj : 0.f, sc);
        if (!joint) {
          float mx = sc[0];
#pragma unroll
          for (int i = 1; i < kKeysPerLane; ++i) mx = fmaxf(mx, sc[i]);
          mx = warp_max(mx);
          float ps = 0.f;
#pragma unroll
          for (int i = 0; i < kKeysPerLane; ++i) p[i] = sc[i] == -INFINITY ? 0.f : __expf(sc[i] - mx), ps += p[i];
          const float inv = 1.f / warp_sum(ps);
#pragma unroll
          for (int i = 0; i < kKeysPerLane; ++i) p[i] *= inv;
        } else {
#pragma unroll
          for (int i = 0; i < kKeysPerLane; ++i) p[i] = sc[i] == -INFINITY ? 0.f : __expf(sc[i] - row_lse);
        }
        // dp_s = <dout, v_s> for the lane's keys
        float dp[kKeysPerLane];
#pragma unroll
        for (int i = 0; i < kKeysPerLane; ++i) {
          const int s = lane + 32 * i;
          dp[i] = s < d.S ? dot_row(dos, vs + s * ld, d.D) : 0.f;
        }
        // chunk fusion: D_j = <dout, o_j> = sum_s p_s dp_s (the slot's dw contribution), ds = w p (dp - D_j),
        // dv_s += w p_s dout. joint: ds = p (dp - <dout, out>), dw_j = sum_s ds, dv_s += p_s dout.
        float ds[kKeysPerLane], pv[kKeysPerLane];
        float red = 0.f;
        if (!joint) {
#pragma unroll
          for (int i = 0; i < kKeysPerLane; ++i) red += p[i] * dp[i];
          red = warp_sum(red);
#pragma unroll
          for (int i = 0; i < kKeysPerLane; ++i) ds[i] = wj * p[i] * (dp[i] - red), pv[i] = wj * p[i];
        } else {
#pragma unroll
          for (int i = 0; i < kKeysPerLane; ++i) ds[i] = p[i] * (dp[i] - dt_row), pv[i] = p[i], red += ds[i];
          red = warp_sum(red);
        }
        if (lane == 0) atomicAdd(dw + (size_t(b) * d.T + t) * d.K + j, red);
        // dq (columns of this lane) += scale * sum_s ds_s k_s
        accumulate_pv<NC>(ds, ks, d.D, d.S, dqa);
        // this warp's ds_s and pv_s for the block-wide dk/dv below
#pragma unroll
        for (int i = 0; i < kKeysPerLane; ++i) {
          const int s = lane + 32 * i;
          if (s < d.S) dssm[warp * d.S + s] = ds[i], pvsm[warp * d.S + s] = pv[i];
        }
      } else {
        for (int s = lane; s < d.S; s += 32) dssm[warp * d.S + s] = 0.f, pvsm[warp * d.S + s] = 0.f;
      }
      __syncthreads();
      // dk_s = sum over the block's heads of ds_s * q (qs carries the scale), dv_s = sum of pv_s * dout: a small
      // [S, heads] x [heads, D] product per slot, one element per thread, added to the float32 accumulators.
      const size_t base = ((size_t(b) * d.N + cj) * d.Hkv + hk) * size_t(d.S) * d.D;
      for (int e = threadIdx.x; e < d.S * d.D; e += blockDim.x) {
        const int r = e / d.D, col = e - r * d.D;
        float a = 0.f, bv = 0.f;
        for (int w2 = 0; w2 < nwarps; ++w2) {
          a = fmaf(dssm[w2 * d.S + r], qsm[w2 * d.D + col], a);
          bv = fmaf(pvsm[w2 * d.S + r], dosm[w2 * d.D + col], bv);
        }
        if (a != 0.f) atomicAdd(dk + base + e, a);
        if (bv != 0.f) atomicAdd(dv + base + e, bv);
      }
    }
    if (!head_ok) continue;
#pragma unroll
    for (int c = 0; c < NC; ++c) {
      const int col = lane + 32 * c;
      if (col < d.D) dq[qrow + col] = from_f<T>(dqa[c] * scale);
    }
  }
}

Dims make_dims(const ChunkShape& s) {
  if (s.D < 1 || s.D > 256) throw std::runtime_error("lctx: error: chunk_attention CUDA kernel needs head size <= 256");
  if (s.S < 1 || s.S > kMaxS) throw std::runtime_error("lctx: error: chunk_attention CUDA kernel needs chunk size <= 128");
  if (s.Hkv < 1 || s.H % s.Hkv != 0) throw std::runtime_error("lctx: error: chunk_attention: kv heads must divide heads");
  if (s.T > (1LL << 31) - 1 || s.Hkv > 65535 || s.B > 65535 || s.N > (1LL << 31) - 1)
    throw std::runtime_error("lctx: error: chunk_attention CUDA kernel: tensor too large");
  return Dims{int(s.B), int(s.H), int(s.Hkv), int(s.T), int(s.D), int(s.N), int(s.S), int(s.K), int(s.H / s.Hkv)};
}

int warps_for(const Dims& d) { return std::min(d.G, kMaxWarps); }

}  // namespace

void chunk_attention_fwd(DType dt_q, DType dt, const void* q, const int64_t* idx, const float* w, const void* k,
                         const void* v, void* out, bool out_f32, float* lse, const ChunkShape& s, float scale,
                         bool joint, cudaStream_t stream) {
  if (s.B * s.H * s.T == 0) return;
  if (dt_q != dt && dt_q != DType::f32)
    throw std::runtime_error("lctx: error: chunk_attention CUDA kernel: queries must be float32 or the k/v dtype");
  const Dims d = make_dims(s);
  const int nw = warps_for(d);
  const size_t smem = size_t(2 * d.S * tile_ld(d.D) + nw * d.D) * sizeof(float);
  const dim3 grid{unsigned(d.T), unsigned(d.Hkv), unsigned(d.B)};
  dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    auto run = [&](auto kern, auto qtag) {
      using TQ = decltype(qtag);
      if (smem > 48 * 1024)
        check(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
              "chunk_attention: shared memory attribute");
      kern<<<grid, nw * 32, smem, stream>>>(static_cast<const TQ*>(q), idx, w, static_cast<const T*>(k),
                                            static_cast<const T*>(v), out, out_f32, lse, d, scale, joint);
      check_launch("chunk_attention forward kernel launch");
    };
    auto pick = [&](auto qtag) {
      using TQ = decltype(qtag);
      switch (head_cols(d.D)) {
        case 1: run(chunk_fwd_kernel<TQ, T, 1>, qtag); break;
        case 2: run(chunk_fwd_kernel<TQ, T, 2>, qtag); break;
        case 4: run(chunk_fwd_kernel<TQ, T, 4>, qtag); break;
        default: run(chunk_fwd_kernel<TQ, T, 8>, qtag); break;
      }
    };
    if (dt_q == dt) pick(tag);
    else pick(float{});
  });
}

void chunk_attention_bwd(DType dt, const void* q, const int64_t* idx, const float* w, const void* k, const void* v,
                         const float* out32, const float* lse, const float* dout, void* dq, float* dk, float* dv,
                         float* dw, const ChunkShape& s, float scale, bool joint, cudaStream_t stream) {
  if (s.B * s.H * s.T == 0) return;
  const Dims d = make_dims(s);
  const int nw = warps_for(d);
  const size_t smem = size_t(2 * d.S * tile_ld(d.D) + 2 * kMaxWarps * (d.D + d.S)) * sizeof(float);
  dim3 grid(unsigned(d.T), unsigned(d.Hkv), unsigned(d.B));
  dispatch_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    auto run = [&](auto kern) {
      if (smem > 48 * 1024)
        check(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
              "chunk_attention backward: shared memory attribute");
      kern<<<grid, nw * 32, smem, stream>>>(static_cast<const T*>(q), idx, w, static_cast<const T*>(k),
                                            static_cast<const T*>(v), out32, lse, dout, static_cast<T*>(dq), dk,
                                            dv, dw, d, scale, joint);
      check_launch("chunk_attention backward kernel launch");
    };
    switch (head_cols(d.D)) {
      case 1: run(chunk_bwd_kernel<T, 1>); break;
      case 2: run(chunk_bwd_kernel<T, 2>); break;
      case 4: run(chunk_bwd_kernel<T, 4>); break;
      default: run(chunk_bwd_kernel<T, 8>); break;
    }
  });
}

}  // namespace lctx::kernels::cuda_impl
