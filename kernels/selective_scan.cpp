// Mamba selective scan: chunked parallel LibTorch reference (autograd), a step-by-step definition, a direct
// CPU loop for inference (no autograd, float32, contiguous) and, for CUDA tensors, the chunked CUDA kernels
// (kernels/cuda/selective_scan.cu; with autograd also selective_scan_bwd.cu), picked by the dispatcher.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda_ops.hpp"
#include "kernels/kernels.hpp"

namespace lctx::kernels {
namespace {

void check_args(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A, const torch::Tensor& Bm,
                const torch::Tensor& C, const torch::Tensor& D, const torch::Tensor& h0) {
  if (x.dim() != 3 || dt.sizes() != x.sizes())
    throw std::invalid_argument("selective_scan: x and dt must both be [B, T, Di]");
  const int64_t b = x.size(0), t = x.size(1), di = x.size(2);
  if (A.dim() != 2 || A.size(0) != di) throw std::invalid_argument("selective_scan: A must be [Di, N]");
  const int64_t n = A.size(1);
  if (Bm.dim() != 3 || Bm.size(0) != b || Bm.size(1) != t || Bm.size(2) != n || C.sizes() != Bm.sizes())
    throw std::invalid_argument("selective_scan: B and C must be [B, T, N]");
  if (D.defined() && (D.dim() != 1 || D.size(0) != di)) throw std::invalid_argument("selective_scan: D must be [Di]");
  if (h0.defined() && (h0.dim() != 3 || h0.size(0) != b || h0.size(1) != di || h0.size(2) != n))
    throw std::invalid_argument("selective_scan: h0 must be [B, Di, N]");
}

// Computation dtype of the reference and the definition: float64 for float64 inputs (tests), else float32.
torch::ScalarType compute_dtype(const torch::Tensor& x) {
  return x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

torch::Tensor initial_state(const torch::Tensor& x, const torch::Tensor& A, const torch::Tensor& h0,
                            torch::ScalarType ct = torch::kFloat) {
  if (h0.defined()) return h0.to(ct);
  return torch::zeros({x.size(0), x.size(2), A.size(1)}, x.options().dtype(ct));
}

torch::Tensor add_skip(torch::Tensor y, const torch::Tensor& x, const torch::Tensor& D) {
  if (D.defined()) y = y + x.to(y.scalar_type()) * D.to(y.scalar_type());
  return y.to(x.scalar_type());
}

// Plain loops over (b, d) in parallel, t and n sequentially: the inference path on CPU.
torch::Tensor scan_cpu_loop(const torch::Tensor& x_, const torch::Tensor& dt_, const torch::Tensor& A_,
                            const torch::Tensor& B_, const torch::Tensor& C_, const torch::Tensor& D_,
                            const torch::Tensor& h0, torch::Tensor* h_last) {
  auto f = [](const torch::Tensor& t) { return t.to(torch::kFloat).contiguous(); };
  auto x = f(x_), dt = f(dt_), A = f(A_), Bm = f(B_), C = f(C_);
  auto D = D_.defined() ? f(D_) : torch::Tensor();
  auto h = initial_state(x_, A_, h0).clone().contiguous();
  const int64_t nb = x.size(0), nt = x.size(1), di = x.size(2), ns = A.size(1);
  auto y = torch::empty({nb, nt, di}, x.options());
  const float *px = x.data_ptr<float>(), *pdt = dt.data_ptr<float>(),
              *pb = Bm.data_ptr<float>(), *pc = C.data_ptr<float>(), *pd = D.defined() ? D.data_ptr<float>() : nullptr;
  float *ph = h.data_ptr<float>(), *py = y.data_ptr<float>();
  // Time tiles: the decays exp(dt * A) of a tile are computed by one vectorised LibTorch call, then plain
  // loops over (b, d) in parallel, t and n sequentially.
  const int64_t tile = 64;
  for (int64_t t0 = 0; t0 < nt; t0 += tile) {
    const int64_t t1 = std::min(nt, t0 + tile), len = t1 - t0;
    auto dA = torch::exp(dt.slice(1, t0, t1).unsqueeze(-1) * A).contiguous();  // [B, L, Di, N]
    const float* pda = dA.data_ptr<float>();
    at::parallel_for(0, nb * di, 16, [&](int64_t begin, int64_t end) {
      for (int64_t bd = begin; bd < end; ++bd) {
        const int64_t b = bd / di, d = bd % di;
        float* hs = ph + bd * ns;
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t row = b * nt + t;
          const float dtv = pdt[row * di + d], xv = px[row * di + d];
          const float* at = pda + ((b * len + (t - t0)) * di + d) * ns;
          const float* bt = pb + row * ns;
          const float* ct = pc + row * ns;
          float acc = 0.f;
          for (int64_t n = 0; n < ns; ++n) {
            hs[n] = at[n] * hs[n] + dtv * bt[n] * xv;
            acc += ct[n] * hs[n];
          }
          py[row * di + d] = acc + (pd ? pd[d] * xv : 0.f);
        }
      }
    });
  }
  if (h_last) *h_last = h;
  return y.to(x_.scalar_type());
}

}  // namespace

torch::Tensor selective_scan_sequential(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                                        const torch::Tensor& Bm, const torch::Tensor& C, const torch::Tensor& D,
                                        const torch::Tensor& h0, torch::Tensor* h_last) {
  check_args(x, dt, A, Bm, C, D, h0);
  const auto ct = compute_dtype(x);
  auto h = initial_state(x, A, h0, ct);
  auto dtf = dt.to(ct), xf = x.to(ct), Af = A.to(ct);
  auto Bf = Bm.to(ct), Cf = C.to(ct);
  std::vector<torch::Tensor> ys;
  for (int64_t t = 0; t < x.size(1); ++t) {
    auto dtt = dtf.select(1, t);                                            // [B, Di]
    auto a = torch::exp(dtt.unsqueeze(-1) * Af);                            // [B, Di, N]
    auto u = (dtt * xf.select(1, t)).unsqueeze(-1) * Bf.select(1, t).unsqueeze(1);
    h = a * h + u;
    ys.push_back(torch::matmul(h, Cf.select(1, t).unsqueeze(-1)).squeeze(-1));  // [B, Di]
  }
  auto y = ys.empty() ? torch::zeros_like(xf) : torch::stack(ys, 1);
  if (h_last) *h_last = h;
  return add_skip(y, x, D);
}

torch::Tensor selective_scan_reference(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                                       const torch::Tensor& Bm, const torch::Tensor& C, const torch::Tensor& D,
                                       const torch::Tensor& h0, torch::Tensor* h_last, int64_t chunk) {
  check_args(x, dt, A, Bm, C, D, h0);
  if (chunk < 1) throw std::invalid_argument("selective_scan: chunk must be >= 1");
  const auto ct = compute_dtype(x);
  auto h = initial_state(x, A, h0, ct);
  auto dtf = dt.to(ct), xf = x.to(ct), Af = A.to(ct);
  auto Bf = Bm.to(ct), Cf = C.to(ct);
  const int64_t nt = x.size(1);
  std::vector<torch::Tensor> ys;
  for (int64_t t0 = 0; t0 < nt; t0 += chunk) {
    const int64_t t1 = std::min(nt, t0 + chunk), len = t1 - t0;
    auto dtc = dtf.slice(1, t0, t1);                                        // [B, L, Di]
    auto a = torch::exp(dtc.unsqueeze(-1) * Af);                            // [B, L, Di, N] decays
    auto u = (dtc * xf.slice(1, t0, t1)).unsqueeze(-1) * Bf.slice(1, t0, t1).unsqueeze(2);  // inputs
    // Fold the carried state into the first step, then an inclusive Hillis-Steele scan of the affine maps
    // h -> a*h + u: after the step with stride s, (a_t, u_t) composes the maps of steps t-2s+1 .. t.
    auto b = torch::cat({u.slice(1, 0, 1) + a.slice(1, 0, 1) * h.unsqueeze(1), u.slice(1, 1)}, 1);
    for (int64_t s = 1; s < len; s *= 2) {
      b = torch::cat({b.slice(1, 0, s), b.slice(1, s) + a.slice(1, s) * b.slice(1, 0, len - s)}, 1);
      if (2 * s < len) a = torch::cat({a.slice(1, 0, s), a.slice(1, s) * a.slice(1, 0, len - s)}, 1);
    }
    // b[:, t] is now the state after step t0 + t.
    ys.push_back(torch::matmul(b, Cf.slice(1, t0, t1).unsqueeze(-1)).squeeze(-1));  // [B, L, Di]
    h = b.select(1, len - 1);
  }
  auto y = ys.empty() ? torch::zeros_like(xf) : torch::cat(ys, 1);
  if (h_last) *h_last = h;
  return add_skip(y, x, D);
}

torch::Tensor selective_scan(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                             const torch::Tensor& Bm, const torch::Tensor& C, const torch::Tensor& D,
                             const torch::Tensor& h0, torch::Tensor* h_last, int64_t chunk) {
  check_args(x, dt, A, Bm, C, D, h0);
  const bool needs_grad = torch::GradMode::is_enabled() &&
                          (x.requires_grad() || dt.requires_grad() || A.requires_grad() || Bm.requires_grad() ||
                           C.requires_grad() || (D.defined() && D.requires_grad()) ||
                           (h0.defined() && h0.requires_grad()));
  if (!needs_grad && x.device().is_cpu()) return scan_cpu_loop(x, dt, A, Bm, C, D, h0, h_last);
#ifdef LCTX_HAVE_CUDA_KERNELS
  if (cuda::selective_scan_supported(x, A) && x.size(1) > 0)
    return needs_grad ? cuda::selective_scan_train(x, dt, A, Bm, C, D, h0, h_last)
                      : cuda::selective_scan(x, dt, A, Bm, C, D, h0, h_last);
#endif
  return selective_scan_reference(x, dt, A, Bm, C, D, h0, h_last, chunk);
}

}  // namespace lctx::kernels
