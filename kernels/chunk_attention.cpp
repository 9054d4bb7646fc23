// LibTorch reference of the HSA retrieval primitives (see chunk_attention.hpp) and the dispatchers that send
// CUDA tensors to kernels/cuda/. Everything here runs on any device; memory is bounded by processing query
// rows in blocks.
#include "kernels/chunk_attention.hpp"

#include "kernels/cuda_ops.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

namespace lctx::kernels {

namespace {
constexpr double kNegInf = -std::numeric_limits<double>::infinity();
}

ChunkSelection topk_visible(const torch::Tensor& scores, const torch::Tensor& visible, int64_t k,
                            const torch::Tensor& noise) {
  TORCH_CHECK(scores.dim() >= 2, "topk_visible: scores must be [..., Tq, N]");
  const int64_t tq = scores.size(-2), n = scores.size(-1);
  TORCH_CHECK(visible.dim() == 1 && visible.size(0) == tq, "topk_visible: visible must be [Tq]");
  const int64_t kk = std::max<int64_t>(0, std::min(k, n));
  auto sizes = scores.sizes().vec();
  sizes.back() = kk;
  ChunkSelection sel;
  if (kk == 0) {
    sel.idx = torch::full(sizes, -1, scores.options().dtype(torch::kInt64));
    sel.scores = torch::full(sizes, kNegInf, scores.options());
    return sel;
  }
  torch::NoGradGuard ng;
  torch::Tensor clean = scores.detach();
  torch::Tensor rank = noise.defined() ? clean + noise.to(clean.dtype()) : clean;
  auto vis = visible.to(scores.device(), torch::kInt64).unsqueeze(-1);                            // [Tq, 1]
  auto hidden = torch::arange(n, vis.options()).unsqueeze(0).ge(vis);                               // [Tq, N]
  rank = rank.masked_fill(hidden, kNegInf);
  auto top = rank.topk(kk, -1, /*largest=*/true, /*sorted=*/true);
  auto vals = std::get<0>(top);
  auto ind = std::get<1>(top);
  auto empty = vals.eq(kNegInf);
  sel.idx = ind.masked_fill(empty, -1);
  sel.scores = clean.gather(-1, ind).masked_fill(empty, kNegInf);
  return sel;
}

ChunkSelection select_chunks_reference(const torch::Tensor& q, const torch::Tensor& landmarks,
                                       const torch::Tensor& visible, int64_t k, double scale, int64_t max_elems) {
  TORCH_CHECK(q.dim() == 2 && landmarks.dim() == 2 && q.size(1) == landmarks.size(1),
              "select_chunks: q [Tq, d] and landmarks [N, d] must agree");
  torch::NoGradGuard ng;
  const int64_t tq = q.size(0), n = landmarks.size(0);
  if (n == 0 || tq == 0) return topk_visible(torch::zeros({tq, n}, q.options()), visible, k);
  const int64_t rows = std::max<int64_t>(1, max_elems / n);
  if (rows >= tq) return topk_visible(torch::matmul(q, landmarks.t()) * scale, visible, k);
  std::vector<torch::Tensor> idx, sc;
  auto vis = visible.to(q.device(), torch::kInt64);
  for (int64_t t0 = 0; t0 < tq; t0 += rows) {
    const int64_t t1 = std::min(tq, t0 + rows);
    auto s = torch::matmul(q.slice(0, t0, t1), landmarks.t()) * scale;
    auto part = topk_visible(s, vis.slice(0, t0, t1), k);
    idx.push_back(part.idx);
    sc.push_back(part.scores);
  }
  return {torch::cat(idx, 0), torch::cat(sc, 0)};
}

namespace {

// Checked, device-placed, float32-or-wider operands shared by both fusions.
struct ChunkAttnInputs {
  int64_t h = 0, tq = 0, d = 0, kk = 0, n = 0, s = 0;
  torch::Tensor id, slot_w;  // idx [Tq, K] int64 on q's device; weights/bias [Tq, K] in the compute dtype
  torch::Tensor kc, vc, qc;  // [N, H, S, D], [N, H, S, D], [H, Tq, D]
  bool empty() const { return kk == 0 || n == 0 || tq == 0; }
};

ChunkAttnInputs prepare(const char* what, const torch::Tensor& q, const torch::Tensor& idx,
                        const torch::Tensor& slot_w, const torch::Tensor& k, const torch::Tensor& v) {
  const std::string w = what;
  TORCH_CHECK(q.dim() == 3, w, ": q must be [H, Tq, D]");
  TORCH_CHECK(k.dim() == 4 && v.sizes() == k.sizes(), w, ": k and v must be [N, H, S, D]");
  ChunkAttnInputs in;
  in.h = q.size(0), in.tq = q.size(1), in.d = q.size(2);
  TORCH_CHECK(k.size(1) > 0 && in.h % k.size(1) == 0 && k.size(3) == in.d,
              w, ": k/v heads must divide q's heads and the head sizes must agree");
  TORCH_CHECK(idx.dim() == 2 && idx.size(0) == in.tq && slot_w.sizes() == idx.sizes(),
              w, ": idx and weights/bias must be [Tq, K]");
  in.kk = idx.size(1), in.n = k.size(0), in.s = k.size(2);
  if (in.empty()) return in;
  // Softmax in float32 at least (the storage may be half precision on the GPU).
  const auto cdt = (q.scalar_type() == torch::kDouble) ? torch::kDouble : torch::kFloat;
  in.id = idx.to(q.device(), torch::kInt64);
  in.slot_w = slot_w.to(q.device(), cdt);
  in.kc = k.to(q.device(), cdt), in.vc = v.to(q.device(), cdt), in.qc = q.to(cdt);
  if (k.size(1) != in.h) {  // grouped-query: the reference simply repeats each kv head for its query heads
    const int64_t g = in.h / k.size(1);
    in.kc = in.kc.repeat_interleave(g, 1), in.vc = in.vc.repeat_interleave(g, 1);
  }
  return in;
}

// The gathered path: per block of query rows, gather each row's K chunks ([nr, K, H, S, D] keys/values and the
// [nr, K, H, S] logits) and let `combine(logits, vg, t0, t1)` turn them into the rows' outputs [nr, H, D].
template <class Combine>
torch::Tensor gathered(const ChunkAttnInputs& in, double scale, const Combine& combine) {
  const int64_t kk = in.kk, h = in.h, s = in.s, d = in.d;
  const int64_t rows = std::max<int64_t>(1, (int64_t(1) << 22) / std::max<int64_t>(1, kk * h * s * d));
  auto qt = in.qc.permute({1, 0, 2});  // [Tq, H, D]
  std::vector<torch::Tensor> outs;
  for (int64_t t0 = 0; t0 < in.tq; t0 += rows) {
    const int64_t t1 = std::min(in.tq, t0 + rows), nr = t1 - t0;
    auto flat = in.id.slice(0, t0, t1).clamp_min(0).reshape({-1});
    auto kg = in.kc.index_select(0, flat).view({nr, kk, h, s, d});
    auto vg = in.vc.index_select(0, flat).view({nr, kk, h, s, d});
    auto qb = qt.slice(0, t0, t1).view({nr, 1, h, d, 1});
    auto logits = torch::matmul(kg, qb).squeeze(-1) * scale;                       // [nr, K, H, S]
    outs.push_back(combine(logits, vg, t0, t1));
  }
  return torch::cat(outs, 0).permute({1, 0, 2}).contiguous();
}

}  // namespace

torch::Tensor chunk_attention_reference(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& weights,
                                        const torch::Tensor& k, const torch::Tensor& v, double scale) {
  auto in = prepare("chunk_attention", q, idx, weights, k, v);
  if (in.empty()) return torch::zeros_like(q);
  const int64_t h = in.h, tq = in.tq, d = in.d, kk = in.kk, n = in.n, s = in.s;
  auto valid_all = in.id.ge(0);
  auto w_all = in.slot_w.masked_fill(valid_all.logical_not(), 0.0);
  // Few distinct chunks (the usual case: neighbouring tokens select alike, and the caller passes only the
  // gathered chunks): dense over all N chunks with per-chunk softmax and zero weights for unselected ones.
  // This reads each chunk once instead of once per (token, slot).
  if (n <= 4 * kk) {
    auto dense = torch::zeros({tq, n + 1}, w_all.options());
    dense.scatter_add_(1, in.id.masked_fill(valid_all.logical_not(), n), w_all);
    dense = dense.slice(1, 0, n);                                                  // [Tq, N]
    auto kh = in.kc.permute({1, 0, 2, 3}).reshape({h, n * s, d});                 // [H, N*S, D]
    auto vh = in.vc.permute({1, 0, 2, 3}).reshape({h, n * s, d});
    auto p = torch::softmax((torch::matmul(in.qc, kh.transpose(1, 2)) * scale).view({h, tq, n, s}), -1);
    p = (p * dense.view({1, tq, n, 1})).view({h, tq, n * s});
    return torch::matmul(p, vh).to(q.scalar_type());
  }
  // Many distinct chunks: gathered rows; softmax inside each chunk, weighted sum over the K slots.
  return gathered(in, scale, [&](const torch::Tensor& logits, const torch::Tensor& vg, int64_t t0, int64_t t1) {
           auto p = torch::softmax(logits, -1) * w_all.slice(0, t0, t1).view({t1 - t0, kk, 1, 1});
           return torch::matmul(p.unsqueeze(-2), vg).squeeze(-2).sum(1);                  // [nr, H, D]
         }).to(q.scalar_type());
}

torch::Tensor chunk_attention_joint_reference(const torch::Tensor& q, const torch::Tensor& idx,
                                              const torch::Tensor& bias, const torch::Tensor& k,
                                              const torch::Tensor& v, double scale) {
  auto in = prepare("chunk_attention_joint", q, idx, bias, k, v);
  if (in.empty()) return torch::zeros_like(q);
  const int64_t h = in.h, tq = in.tq, d = in.d, kk = in.kk, n = in.n, s = in.s;
  auto empty_all = in.id.lt(0).logical_or(in.slot_w.eq(kNegInf));
  auto b_all = in.slot_w.masked_fill(empty_all, kNegInf);
  // Softmax over masked logits; rows without any selected token give 0 instead of NaN.
  auto safe_softmax = [](const torch::Tensor& logits) {
    auto none = logits.eq(kNegInf).all(-1, /*keepdim=*/true);
    return torch::softmax(logits.masked_fill(none, 0.0), -1).masked_fill(none, 0.0);
  };
  if (n <= 4 * kk) {  // dense over the N gathered chunks: bias -inf where a row did not select a chunk
    auto dense = torch::full({tq, n + 1}, kNegInf, b_all.options());
    dense.scatter_(1, in.id.masked_fill(empty_all, n), b_all);
    dense = dense.slice(1, 0, n);                                                   // [Tq, N]
    auto kh = in.kc.permute({1, 0, 2, 3}).reshape({h, n * s, d});
    auto vh = in.vc.permute({1, 0, 2, 3}).reshape({h, n * s, d});
    auto logits = (torch::matmul(in.qc, kh.transpose(1, 2)) * scale).view({h, tq, n, s}) + dense.view({1, tq, n, 1});
    auto p = safe_softmax(logits.view({h, tq, n * s}));
    return torch::matmul(p, vh).to(q.scalar_type());
  }
  return gathered(in, scale, [&](const torch::Tensor& logits, const torch::Tensor& vg, int64_t t0, int64_t t1) {
           const int64_t nr = t1 - t0;
           auto l = logits + b_all.slice(0, t0, t1).view({nr, kk, 1, 1});
           auto p = safe_softmax(l.permute({0, 2, 1, 3}).reshape({nr, h, kk * s}));    // [nr, H, K*S]
           auto vv = vg.permute({0, 2, 1, 3, 4}).reshape({nr, h, kk * s, d});
           return torch::matmul(p.unsqueeze(-2), vv).squeeze(-2);                       // [nr, H, D]
         }).to(q.scalar_type());
}

// ---- training: batched, differentiable ------------------------------------------------------------------

torch::Tensor chunk_attention_train_reference(const torch::Tensor& q, const torch::Tensor& idx,
                                              const torch::Tensor& w, const torch::Tensor& k,
                                              const torch::Tensor& v, double scale, bool joint) {
  TORCH_CHECK(q.dim() == 4, "chunk_attention_train: q must be [B, H, T, D]");
  TORCH_CHECK(k.dim() == 5 && v.sizes() == k.sizes(), "chunk_attention_train: k and v must be [B, N, Hkv, S, D]");
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), d = q.size(3);
  const int64_t n = k.size(1), hkv = k.size(2), s = k.size(3);
  TORCH_CHECK(k.size(0) == b && k.size(4) == d && hkv > 0 && h % hkv == 0,
              "chunk_attention_train: k/v batch, kv heads (must divide H) or head size disagree with q");
  TORCH_CHECK(idx.dim() == 3 && idx.size(0) == b && idx.size(1) == t && w.sizes() == idx.sizes(),
              "chunk_attention_train: idx and w must be [B, T, K]");
  const int64_t kk = idx.size(2), g = h / hkv;
  if (kk == 0 || n == 0 || t == 0 || s == 0) return q * 0;  // keeps the graph (zero gradients)
  const auto cdt = (q.scalar_type() == torch::kDouble) ? torch::kDouble : torch::kFloat;
  auto id = idx.to(q.device(), torch::kInt64);
  auto qf = q.to(cdt), kf = k.to(cdt).reshape({b * n, hkv, s, d}), vf = v.to(cdt).reshape({b * n, hkv, s, d});
  auto wf = w.to(q.device(), cdt);
  auto base = (torch::arange(b, id.options()) * n).view({b, 1, 1});
  // Rows per block: bounds the gathered [B, rows, K, Hkv, S, D] tensors of one block (autograd keeps them all).
  const int64_t rows = std::max<int64_t>(1, (int64_t(1) << 22) / std::max<int64_t>(1, b * kk * hkv * s * d));
  std::vector<torch::Tensor> outs;
  for (int64_t t0 = 0; t0 < t; t0 += rows) {
    const int64_t t1 = std::min(t, t0 + rows), nr = t1 - t0;
    auto ib = id.slice(1, t0, t1);                                                   // [B, nr, K]
    auto valid = ib.ge(0);
    auto flat = (ib.clamp_min(0) + base).reshape({-1});
    auto kg = kf.index_select(0, flat).view({b, nr, kk, hkv, s, d});
    auto vg = vf.index_select(0, flat).view({b, nr, kk, hkv, s, d});
    auto qb = qf.slice(2, t0, t1).permute({0, 2, 1, 3}).reshape({b, nr, 1, hkv, g, d});  // h = kv * G + g
    auto logits = torch::matmul(qb, kg.transpose(-1, -2)) * scale;                  // [B, nr, K, Hkv, G, S]
    auto wb = wf.slice(1, t0, t1);                                                   // [B, nr, K]
    torch::Tensor ob;                                                                // [B, nr, Hkv, G, D]
    if (!joint) {
      auto p = torch::softmax(logits, -1);
      auto o = torch::matmul(p, vg);                                                 // [B, nr, K, Hkv, G, D]
      auto wv = torch::where(valid, wb, torch::zeros_like(wb)).view({b, nr, kk, 1, 1, 1});
      ob = (o * wv).sum(2);
    } else {
      auto keep = valid.logical_and(wb.ne(kNegInf));                                 // [B, nr, K]
      auto bias = torch::where(keep, wb, torch::zeros_like(wb)).view({b, nr, kk, 1, 1, 1});
      auto l = (logits + bias).masked_fill(keep.logical_not().view({b, nr, kk, 1, 1, 1}), kNegInf);
      l = l.permute({0, 1, 3, 4, 2, 5}).reshape({b, nr, hkv, g, kk * s});
      auto none = keep.any(-1).logical_not().view({b, nr, 1, 1, 1});
      auto p = torch::softmax(l.masked_fill(none, 0.0), -1).masked_fill(none, 0.0);
      auto vv = vg.permute({0, 1, 3, 2, 4, 5}).reshape({b, nr, hkv, 1, kk * s, d});
      ob = torch::matmul(p.unsqueeze(-2), vv).squeeze(-2);                           // [B, nr, Hkv, G, D]
    }
    outs.push_back(ob.reshape({b, nr, h, d}));
  }
  return torch::cat(outs, 1).permute({0, 2, 1, 3}).to(q.scalar_type());
}

// ---- dispatchers -------------------------------------------------------------------------------------

bool cuda_kernels_built() {
#ifdef LCTX_HAVE_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

ChunkSelection select_chunks(const torch::Tensor& q, const torch::Tensor& landmarks, const torch::Tensor& visible,
                             int64_t k, double scale, int64_t max_elems) {
#ifdef LCTX_HAVE_CUDA_KERNELS
  if (cuda::select_chunks_supported(q, landmarks, k)) return cuda::select_chunks(q, landmarks, visible, k, scale);
#endif
  return select_chunks_reference(q, landmarks, visible, k, scale, max_elems);
}

torch::Tensor chunk_attention_joint(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& bias,
                                    const torch::Tensor& k, const torch::Tensor& v, double scale) {
#ifdef LCTX_HAVE_CUDA_KERNELS
  if (!cuda::needs_grad({q, bias, k, v}) && cuda::chunk_attention_supported(q, k))
    return cuda::chunk_attention(q, idx, bias, k, v, scale, /*joint=*/true);
#endif
  return chunk_attention_joint_reference(q, idx, bias, k, v, scale);
}

torch::Tensor chunk_attention_train(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& w,
                                    const torch::Tensor& k, const torch::Tensor& v, double scale, bool joint) {
#ifdef LCTX_HAVE_CUDA_KERNELS
  if (cuda::chunk_attention_supported(q, k)) return cuda::chunk_attention_train(q, idx, w, k, v, scale, joint);
#endif
  return chunk_attention_train_reference(q, idx, w, k, v, scale, joint);
}

torch::Tensor chunk_attention(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& weights,
                              const torch::Tensor& k, const torch::Tensor& v, double scale) {
#ifdef LCTX_HAVE_CUDA_KERNELS
  if (!cuda::needs_grad({q, weights, k, v}) && cuda::chunk_attention_supported(q, k))
    return cuda::chunk_attention(q, idx, weights, k, v, scale, /*joint=*/false);
#endif
  return chunk_attention_reference(q, idx, weights, k, v, scale);
}

}  // namespace lctx::kernels
