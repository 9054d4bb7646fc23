// Causal sliding-window attention: LibTorch reference (query blocks against their window of keys) and the
// dispatcher (CUDA kernel for CUDA tensors outside autograd, see kernels/cuda/window_attention.cu).
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/cuda_ops.hpp"
#include "kernels/kernels.hpp"

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

}  // namespace

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
  return window_attention_reference(q, k, v, window, q_pos0, k_pos0, scale);
}

}  // namespace lctx::kernels
