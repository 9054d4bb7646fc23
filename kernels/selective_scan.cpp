// Mamba selective scan: chunked parallel LibTorch reference (autograd), a step-by-step definition, a direct
// CPU loop for inference (no autograd, float32, contiguous) and, for CUDA tensors, the chunked CUDA kernels
// (kernels/cuda/selective_scan.cu; with autograd also selective_scan_bwd.cu), picked by the dispatcher.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

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

// ---- fused training scan: a forward that keeps only the chunk start states, a backward that recomputes ----
// The CUDA kernels (kernels/cuda/selective_scan*.cu) and, on the CPU, the same chunked algorithm in plain
// loops (float32), so that its adjoint and its autograd plumbing are tested without a GPU.

// Steps per chunk: the backward's unit of recomputation (its states and decays sit in registers on a GPU).
int64_t train_chunk(int64_t n) { return n <= 32 ? 32 : 16; }

// Forward: y [B, T, Di], h_last [B, Di, N], H [B, nch, Di, N] (the state before each chunk's first step).
void fused_fwd_cpu(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A, const torch::Tensor& Bm,
                   const torch::Tensor& C, const torch::Tensor& D, const torch::Tensor& h0, int64_t L, torch::Tensor& y,
                   torch::Tensor& h_last, torch::Tensor& H) {
  const int64_t nb = x.size(0), nt = x.size(1), di = x.size(2), ns = A.size(1), nch = (nt + L - 1) / L;
  y = torch::empty({nb, nt, di}, x.options());
  h_last = torch::empty({nb, di, ns}, x.options());
  H = torch::empty({nb, nch, di, ns}, x.options());
  const float *px = x.data_ptr<float>(), *pdt = dt.data_ptr<float>(), *pa = A.data_ptr<float>(),
              *pb = Bm.data_ptr<float>(), *pc = C.data_ptr<float>();
  const float* pd = D.defined() ? D.data_ptr<float>() : nullptr;
  const float* ph0 = h0.defined() ? h0.data_ptr<float>() : nullptr;
  float *py = y.data_ptr<float>(), *phl = h_last.data_ptr<float>(), *pH = H.data_ptr<float>();
  at::parallel_for(0, nb * di, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> h(static_cast<size_t>(ns));
    for (int64_t bd = begin; bd < end; ++bd) {
      const int64_t b = bd / di, d = bd % di;
      for (int64_t n = 0; n < ns; ++n) h[n] = ph0 ? ph0[bd * ns + n] : 0.f;
      for (int64_t c = 0; c < nch; ++c) {
        std::copy(h.begin(), h.end(), pH + ((b * nch + c) * di + d) * ns);
        for (int64_t t = c * L; t < std::min(nt, (c + 1) * L); ++t) {
          const int64_t row = b * nt + t;
          const float dv = pdt[row * di + d], xv = px[row * di + d];
          float acc = 0.f;
          for (int64_t n = 0; n < ns; ++n) {
            h[n] = std::exp(dv * pa[d * ns + n]) * h[n] + dv * xv * pb[row * ns + n];
            acc += pc[row * ns + n] * h[n];
          }
          py[row * di + d] = acc + (pd ? pd[d] * xv : 0.f);
        }
      }
      std::copy(h.begin(), h.end(), phl + bd * ns);
    }
  });
}

// Backward of the SSM part (docs/kernels.md): per chunk the gradient from a zero incoming one (Uz) and the
// decay P; a reverse carry E across chunks from dh_last (its end is dh0); per chunk the states recomputed
// from H, then the reverse walk from E. Returns {dx (no skip term), ddt, dA, dB, dC, dh0}.
std::vector<torch::Tensor> fused_bwd_cpu(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                                         const torch::Tensor& Bm, const torch::Tensor& C, const torch::Tensor& H,
                                         const torch::Tensor& dy, const torch::Tensor& dh_last, int64_t L) {
  const int64_t nb = x.size(0), nt = x.size(1), di = x.size(2), ns = A.size(1), nch = H.size(1);
  auto dx = torch::empty_like(x), ddt = torch::empty_like(x);
  auto dA = torch::zeros({nb, di, ns}, x.options()), dB = torch::zeros({nb, nt, ns}, x.options());
  auto dC = torch::zeros({nb, nt, ns}, x.options()), dh0 = torch::empty({nb, di, ns}, x.options());
  const float *px = x.data_ptr<float>(), *pdt = dt.data_ptr<float>(), *pa = A.data_ptr<float>(),
              *pb = Bm.data_ptr<float>(), *pc = C.data_ptr<float>(), *pH = H.data_ptr<float>(),
              *pdy = dy.data_ptr<float>();
  const float* pdhl = dh_last.defined() ? dh_last.data_ptr<float>() : nullptr;
  float *pdx = dx.data_ptr<float>(), *pddt = ddt.data_ptr<float>(), *pdA = dA.data_ptr<float>(),
        *pdB = dB.data_ptr<float>(), *pdC = dC.data_ptr<float>(), *pdh0 = dh0.data_ptr<float>();
  // Parallel over the batch: the channels of one batch row add into the same dB/dC rows.
  at::parallel_for(0, nb, 1, [&](int64_t begin, int64_t end) {
    const auto sz = [](int64_t k) { return static_cast<size_t>(k); };
    std::vector<float> P(sz(nch * ns)), E(sz(nch * ns)), hs(sz(L * ns)), as(sz(L * ns)), g(sz(ns));
    for (int64_t b = begin; b < end; ++b)
      for (int64_t d = 0; d < di; ++d) {
        const float* a = pa + d * ns;
        auto at_ = [&](int64_t t) { return (b * nt + t) * di + d; };
        for (int64_t c = 0; c < nch; ++c) {  // pass 1
          float sdt = 0.f;
          std::fill(g.begin(), g.end(), 0.f);
          for (int64_t t = std::min(nt, (c + 1) * L) - 1; t >= c * L; --t) {
            const float dv = pdt[at_(t)], gy = pdy[at_(t)];
            sdt += dv;
            for (int64_t n = 0; n < ns; ++n) g[n] = std::exp(dv * a[n]) * (pc[(b * nt + t) * ns + n] * gy + g[n]);
          }
          for (int64_t n = 0; n < ns; ++n) P[c * ns + n] = std::exp(a[n] * sdt), E[c * ns + n] = g[n];
        }
        for (int64_t n = 0; n < ns; ++n) {  // pass 2: E[c] (in place of Uz[c])
          float q = pdhl ? pdhl[(b * di + d) * ns + n] : 0.f;
          for (int64_t c = nch - 1; c >= 0; --c) {
            const float u = E[c * ns + n];
            E[c * ns + n] = q;
            q = P[c * ns + n] * q + u;
          }
          pdh0[(b * di + d) * ns + n] = q;
        }
        for (int64_t c = 0; c < nch; ++c) {  // pass 3
          const int64_t t0 = c * L, len = std::min(nt, t0 + L) - t0;
          const float* h0 = pH + ((b * nch + c) * di + d) * ns;
          for (int64_t i = 0; i < len; ++i) {
            const float dv = pdt[at_(t0 + i)], xv = px[at_(t0 + i)];
            for (int64_t n = 0; n < ns; ++n) {
              const float hp = i ? hs[(i - 1) * ns + n] : h0[n];
              as[i * ns + n] = std::exp(dv * a[n]);
              hs[i * ns + n] = as[i * ns + n] * hp + dv * xv * pb[(b * nt + t0 + i) * ns + n];
            }
          }
          for (int64_t n = 0; n < ns; ++n) g[n] = E[c * ns + n];
          for (int64_t i = len - 1; i >= 0; --i) {
            const int64_t t = t0 + i, row = (b * nt + t) * ns;
            const float dv = pdt[at_(t)], xv = px[at_(t)], gy = pdy[at_(t)];
            float gB = 0.f, pA = 0.f;
            for (int64_t n = 0; n < ns; ++n) {
              g[n] += pc[row + n] * gy;
              const float hp = i ? hs[(i - 1) * ns + n] : h0[n];
              const float t1 = g[n] * as[i * ns + n] * hp;
              pdC[row + n] += gy * hs[i * ns + n];
              pdB[row + n] += g[n] * dv * xv;
              gB += g[n] * pb[row + n];
              pA += a[n] * t1;
              pdA[(b * di + d) * ns + n] += dv * t1;
              g[n] *= as[i * ns + n];
            }
            pdx[at_(t)] = dv * gB;
            pddt[at_(t)] = pA + xv * gB;
          }
        }
      }
  });
  return {dx, ddt, dA.sum(0), dB, dC, dh0};
}

bool kernel_dtype(torch::ScalarType t) {
  return t == torch::kFloat || t == torch::kBFloat16 || t == torch::kHalf;
}

// Inputs x/dt/B/C take one storage dtype (on CUDA x's when all four agree, else float32); D and h0 come
// as placeholders with has_D / has_h0 (autograd's bookkeeping needs defined tensors). Gradients return in
// each input's dtype.
class ScanFusedFn : public torch::autograd::Function<ScanFusedFn> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                                                const torch::Tensor& dt, const torch::Tensor& A,
                                                const torch::Tensor& Bm, const torch::Tensor& C,
                                                const torch::Tensor& D, const torch::Tensor& h0, bool has_D,
                                                bool has_h0) {
    const auto xt = x.scalar_type();
    const bool same = dt.scalar_type() == xt && Bm.scalar_type() == xt && C.scalar_type() == xt;
    const auto st = (x.is_cuda() && same && kernel_dtype(xt)) ? xt : torch::kFloat;
    auto cv = [&](const torch::Tensor& t) { return t.to(x.device(), st).contiguous(); };
    auto f = [&](const torch::Tensor& t) { return t.to(x.device(), torch::kFloat).contiguous(); };
    auto xc = cv(x), dtc = cv(dt), bc = cv(Bm), cc = cv(C), af = f(A);
    auto df = has_D ? f(D) : torch::Tensor(), hf = has_h0 ? f(h0) : torch::Tensor();
    const int64_t L = train_chunk(A.size(1));
    torch::Tensor y, hl, H;
    if (x.is_cuda()) {
#ifdef LCTX_HAVE_CUDA_KERNELS
      cuda::selective_scan_train_fwd(xc, dtc, af, bc, cc, df, hf, L, y, hl, H);
#else
      throw std::invalid_argument("selective_scan_fused: CUDA tensors need lctx built with LCTX_WITH_CUDA");
#endif
    } else {
      fused_fwd_cpu(xc, dtc, af, bc, cc, df, hf, L, y, hl, H);
    }
    ctx->save_for_backward({xc, dtc, af, bc, cc, df, H});
    ctx->saved_data["dtypes"] = std::vector<int64_t>{int64_t(xt), int64_t(dt.scalar_type()), int64_t(A.scalar_type()),
                                                     int64_t(Bm.scalar_type()), int64_t(C.scalar_type()),
                                                     int64_t(D.scalar_type()), int64_t(h0.scalar_type())};
    ctx->saved_data["has_h0"] = has_h0;
    return {y.to(xt), hl};
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    auto xc = saved[0], dtc = saved[1], af = saved[2], bc = saved[3], cc = saved[4], df = saved[5], H = saved[6];
    const auto types = ctx->saved_data["dtypes"].toIntVector();
    const bool has_h0 = ctx->saved_data["has_h0"].toBool();
    auto f32 = xc.options().dtype(torch::kFloat);
    auto dy = grads[0].defined() ? grads[0].to(torch::kFloat).contiguous() : torch::zeros(xc.sizes(), f32);
    auto dhl = grads[1].defined() ? grads[1].to(torch::kFloat).contiguous() : torch::Tensor();
    std::vector<torch::Tensor> g;
    if (xc.is_cuda()) {
#ifdef LCTX_HAVE_CUDA_KERNELS
      g = cuda::selective_scan_train_bwd(xc, dtc, af, bc, cc, H, dy, dhl);
#endif
    } else {
      g = fused_bwd_cpu(xc, dtc, af, bc, cc, H, dy, dhl, train_chunk(af.size(1)));
    }
    torch::Tensor dx = g[0], dD;
    if (df.defined()) {
      dx = dx + dy * df;
      dD = (dy * xc.to(torch::kFloat)).sum(torch::IntArrayRef{0, 1});
    }
    auto ty = [&](int i) { return torch::ScalarType(types[size_t(i)]); };
    return {dx.to(ty(0)),
            g[1].to(ty(1)),
            g[2].to(ty(2)),
            g[3].to(ty(3)),
            g[4].to(ty(4)),
            dD.defined() ? dD.to(ty(5)) : torch::Tensor(),
            has_h0 ? g[5].to(ty(6)) : torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

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
    return needs_grad ? selective_scan_fused(x, dt, A, Bm, C, D, h0, h_last)
                      : cuda::selective_scan(x, dt, A, Bm, C, D, h0, h_last);
#endif
  return selective_scan_reference(x, dt, A, Bm, C, D, h0, h_last, chunk);
}

torch::Tensor selective_scan_fused(const torch::Tensor& x, const torch::Tensor& dt, const torch::Tensor& A,
                                   const torch::Tensor& Bm, const torch::Tensor& C, const torch::Tensor& D,
                                   const torch::Tensor& h0, torch::Tensor* h_last) {
  check_args(x, dt, A, Bm, C, D, h0);
  if (x.size(1) < 1) throw std::invalid_argument("selective_scan_fused: T must be >= 1");
#ifdef LCTX_HAVE_CUDA_KERNELS
  if (x.is_cuda() && !cuda::selective_scan_supported(x, A))
    throw std::invalid_argument("selective_scan_fused: the CUDA kernels do not take these inputs (see selective_scan_supported)");
#endif
  const auto none = torch::empty({0}, x.options().dtype(torch::kFloat));
  auto out = ScanFusedFn::apply(x, dt, A, Bm, C, D.defined() ? D : none, h0.defined() ? h0 : none, D.defined(),
                                h0.defined());
  if (h_last) *h_last = out[1];
  return out[0];
}

}  // namespace lctx::kernels
