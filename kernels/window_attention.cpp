// Causal sliding-window attention: LibTorch reference (query blocks against their window of keys) and the
// dispatcher (CUDA kernel for CUDA tensors outside autograd, see kernels/cuda/window_attention.cu).
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include <torch/version.h>

#include "kernels/cuda_ops.hpp"
#include "kernels/kernels.hpp"

#define LCTX_HAVE_SDPA (TORCH_VERSION_MAJOR >= 2)

namespace lctx::kernels {
namespace {

void check_args(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window,
                int64_t q_pos0, int64_t k_pos0) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4)
    throw std::invalid_argument("window_attention: q, k, v must be [B, H, T, D]");
  if (k.size(2) != v.size(2) || q.size(-1) != k.size(-1))
    throw std::invalid_argument("window_attention: k/v length or head dim mismatch");
  if (window < 1) throw std::invalid_argument("window_attention: window must be >= 1");
  if (k_pos0 > q_pos0 || q_pos0 + q.size(2) > k_pos0 + k.size(2))
    throw std::invalid_argument("window_attention: every query must see its own key (positions q " +
                                std::to_string(q_pos0) + "+" + std::to_string(q.size(2)) + ", k " +
                                std::to_string(k_pos0) + "+" + std::to_string(k.size(2)) + ")");
}

// Masked softmax attention of queries at positions qp0.. against keys at kp0.. (slices already cut).
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window,
                     int64_t qp0, int64_t kp0, double scale) {
  auto opt = torch::TensorOptions().dtype(torch::kLong).device(q.device());
  auto qpos = torch::arange(qp0, qp0 + q.size(2), opt);
  auto kpos = torch::arange(kp0, kp0 + k.size(2), opt);
  auto diff = qpos.unsqueeze(1) - kpos.unsqueeze(0);  // [Tq, Tk]
  auto blocked = diff.lt(0).logical_or(diff.ge(window));
  auto s = torch::matmul(q.to(torch::kFloat), k.to(torch::kFloat).transpose(-2, -1)) * scale;
  s = s.masked_fill(blocked, -std::numeric_limits<float>::infinity());
  auto p = torch::softmax(s, -1);
  return torch::matmul(p.to(v.scalar_type()), v).to(q.scalar_type());
}

bool under_autograd(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  return torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
}

// allowed[n, i, j]: query i of block n may attend to key j of [block n-1; block n] (blocks of bs positions).
torch::Tensor band_mask(int64_t nb, int64_t bs, int64_t window, const torch::Device& dev) {
  auto opt = torch::TensorOptions().dtype(torch::kLong).device(dev);
  auto i = torch::arange(bs, opt).view({1, bs, 1});
  auto j = torch::arange(2 * bs, opt).view({1, 1, 2 * bs});
  auto n = torch::arange(nb, opt).view({nb, 1, 1});
  auto diff = i + bs - j;  // query position minus key position
  return diff.ge(0).logical_and(diff.lt(window)).logical_and(n.gt(0).logical_or(j.ge(bs)));
}

}  // namespace

torch::Tensor attention_full(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  if (scale <= 0) scale = 1.0 / std::sqrt(double(q.size(-1)));
#if LCTX_HAVE_SDPA
  return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/false, scale);
#else
  auto logits = torch::matmul(q, k.transpose(-2, -1)).to(torch::kFloat) * scale;
  return torch::matmul(torch::softmax(logits, -1).to(v.scalar_type()), v);
#endif
}

torch::Tensor window_attention_blocked(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       int64_t window, double scale) {
  check_args(q, k, v, window, 0, 0);
  if (k.size(2) != q.size(2)) throw std::invalid_argument("window_attention_blocked: q and k must cover the same positions");
  if (scale <= 0) scale = 1.0 / std::sqrt(double(q.size(-1)));
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), d = q.size(3);
  const int64_t bs = std::max<int64_t>(window, 64);  // >= window: a query's keys lie in its block and the one before
  if (t <= bs) return attend(q, k, v, window, 0, 0, scale);
  const int64_t nb = (t + bs - 1) / bs, tp = nb * bs;
  auto pad_end = [&](const torch::Tensor& x) { return tp == t ? x : torch::constant_pad_nd(x, {0, 0, 0, tp - t}); };
  auto qb = pad_end(q).reshape({b, h, nb, bs, d});
  auto blocks = [&](const torch::Tensor& x) {  // [B, H, T, D] -> [B, H, nb, 2 bs, D]: previous block, own block
    auto xp = torch::constant_pad_nd(pad_end(x), {0, 0, bs, 0});
    return torch::cat({xp.slice(2, 0, tp).reshape({b, h, nb, bs, d}), xp.slice(2, bs).reshape({b, h, nb, bs, d})}, 3);
  };
  auto kc = blocks(k), vc = blocks(v);
  auto allowed = band_mask(nb, bs, window, q.device());  // [nb, bs, 2 bs]
  torch::Tensor out;
#if LCTX_HAVE_SDPA
  // Blocks join the head dimension; the mask broadcasts over the batch.
  auto mask = allowed.unsqueeze(0).expand({h, nb, bs, 2 * bs}).reshape({1, h * nb, bs, 2 * bs});
  out = at::scaled_dot_product_attention(qb.reshape({b, h * nb, bs, d}), kc.reshape({b, h * nb, 2 * bs, d}),
                                         vc.reshape({b, h * nb, 2 * bs, d}), mask, 0.0, false, scale);
#else
  auto s = torch::matmul(qb, kc.transpose(-2, -1)).to(torch::kFloat) * scale;  // [B, H, nb, bs, 2 bs]
  s = s.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
  out = torch::matmul(torch::softmax(s, -1).to(vc.scalar_type()), vc);
#endif
  return out.reshape({b, h, tp, d}).slice(2, 0, t).to(q.scalar_type());
}

torch::Tensor window_attention_dense(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     int64_t window, int64_t q_pos0, int64_t k_pos0, double scale) {
  check_args(q, k, v, window, q_pos0, k_pos0);
  if (scale <= 0) scale = 1.0 / std::sqrt(double(q.size(-1)));
  return attend(q, k, v, window, q_pos0, k_pos0, scale);
}

torch::Tensor window_attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                         int64_t window, int64_t q_pos0, int64_t k_pos0, double scale,
                                         int64_t query_block) {
  check_args(q, k, v, window, q_pos0, k_pos0);
  if (scale <= 0) scale = 1.0 / std::sqrt(double(q.size(-1)));
  const int64_t tq = q.size(2), tk = k.size(2);
  // Query block: at least the window (fewer blocks), at most 1024 rows (bounded score matrix).
  int64_t qb = query_block > 0 ? query_block : std::min<int64_t>(std::max<int64_t>(window, 256), 1024);
  if (tq <= qb) {
    // Keys older than the window of the first query are never visible: drop them.
    const int64_t first = std::max<int64_t>(0, q_pos0 - window + 1 - k_pos0);
    const int64_t last = std::min<int64_t>(tk, q_pos0 + tq - k_pos0);
    return attend(q, k.slice(2, first, last), v.slice(2, first, last), window, q_pos0, k_pos0 + first, scale);
  }
  std::vector<torch::Tensor> outs;
  for (int64_t i0 = 0; i0 < tq; i0 += qb) {
    const int64_t i1 = std::min(tq, i0 + qb);
    const int64_t p0 = q_pos0 + i0, p1 = q_pos0 + i1;  // query positions [p0, p1)
    const int64_t j0 = std::max<int64_t>(0, p0 - window + 1 - k_pos0);
    const int64_t j1 = std::min<int64_t>(tk, p1 - k_pos0);
    outs.push_back(attend(q.slice(2, i0, i1), k.slice(2, j0, j1), v.slice(2, j0, j1), window, p0, k_pos0 + j0,
                          scale));
  }
  return torch::cat(outs, 2);
}

torch::Tensor window_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               int64_t window, int64_t q_pos0, int64_t k_pos0, double scale) {
#ifdef LCTX_HAVE_CUDA_KERNELS
  if (!cuda::needs_grad({q, k, v}) && cuda::window_attention_supported(q, k, v)) {
    check_args(q, k, v, window, q_pos0, k_pos0);
    return cuda::window_attention(q, k, v, window, q_pos0, k_pos0, scale > 0 ? scale : 1.0 / std::sqrt(double(q.size(-1))));
  }
#endif
  // Training (autograd, queries and keys at the same positions): the blocked form, a few fused operations.
  if (under_autograd(q, k, v) && q_pos0 == k_pos0 && q.size(2) == k.size(2))
    return window_attention_blocked(q, k, v, window, scale);  // checks its arguments
  return window_attention_reference(q, k, v, window, q_pos0, k_pos0, scale);
}

}  // namespace lctx::kernels
