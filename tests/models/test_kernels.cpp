// kernels/selective_scan: the chunked parallel scan and the CPU loop equal the step-by-step definition,
// with carried state, for chunk sizes that do and do not divide T; gradients match too.
#include "kernels/kernels.hpp"
#include "tests/catch.hpp"

namespace {
struct Inputs {
  torch::Tensor x, dt, A, Bm, C, D, h0;
};
Inputs make(int64_t b, int64_t t, int64_t di, int64_t n) {
  Inputs in;
  in.x = torch::randn({b, t, di});
  in.dt = torch::softplus(torch::randn({b, t, di}) - 2.0);
  in.A = -torch::exp(torch::randn({di, n}));
  in.Bm = torch::randn({b, t, n});
  in.C = torch::randn({b, t, n});
  in.D = torch::randn({di});
  in.h0 = torch::randn({b, di, n});
  return in;
}
double md(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }
}  // namespace

TEST_CASE("selective scan: chunked and loop forms equal the definition", "[kernels]") {
  torch::manual_seed(31);
  auto in = make(2, 77, 12, 5);
  torch::Tensor h_seq, h_chunk, h_loop;
  auto y_seq = lctx::kernels::selective_scan_sequential(in.x, in.dt, in.A, in.Bm, in.C, in.D, in.h0, &h_seq);
  for (int64_t chunk : {1, 8, 16, 64, 100}) {
    auto y = lctx::kernels::selective_scan_reference(in.x, in.dt, in.A, in.Bm, in.C, in.D, in.h0, &h_chunk, chunk);
    CHECK(md(y, y_seq) < 1e-4);
    CHECK(md(h_chunk, h_seq) < 1e-4);
  }
  torch::NoGradGuard ng;
  auto y_loop = lctx::kernels::selective_scan(in.x, in.dt, in.A, in.Bm, in.C, in.D, in.h0, &h_loop);
  REQUIRE(md(y_loop, y_seq) < 1e-4);
  REQUIRE(md(h_loop, h_seq) < 1e-4);
  // split in two calls with the carried state = one call
  torch::Tensor h1, h2;
  auto ya = lctx::kernels::selective_scan(in.x.slice(1, 0, 30), in.dt.slice(1, 0, 30), in.A, in.Bm.slice(1, 0, 30),
                                          in.C.slice(1, 0, 30), in.D, in.h0, &h1);
  auto yb = lctx::kernels::selective_scan(in.x.slice(1, 30), in.dt.slice(1, 30), in.A, in.Bm.slice(1, 30),
                                          in.C.slice(1, 30), in.D, h1, &h2);
  REQUIRE(md(torch::cat({ya, yb}, 1), y_seq) < 1e-4);
  REQUIRE(md(h2, h_seq) < 1e-4);
  REQUIRE_THROWS(lctx::kernels::selective_scan(in.x, in.dt, in.A.t(), in.Bm, in.C, in.D, in.h0));
}

TEST_CASE("selective scan: gradients of the chunked scan equal those of the definition", "[kernels]") {
  torch::manual_seed(32);
  auto in = make(1, 40, 6, 4);
  auto grads = [&](bool chunked) {
    auto x = in.x.clone().requires_grad_(true), dt = in.dt.clone().requires_grad_(true);
    auto A = in.A.clone().requires_grad_(true), Bm = in.Bm.clone().requires_grad_(true);
    auto y = chunked ? lctx::kernels::selective_scan(x, dt, A, Bm, in.C, in.D, in.h0, nullptr, 16)
                     : lctx::kernels::selective_scan_sequential(x, dt, A, Bm, in.C, in.D, in.h0);
    (y * y).sum().backward();
    return std::vector<torch::Tensor>{x.grad(), dt.grad(), A.grad(), Bm.grad()};
  };
  auto a = grads(true), b = grads(false);
  for (size_t i = 0; i < a.size(); ++i) CHECK(md(a[i], b[i]) / (1.0 + b[i].abs().max().item<double>()) < 1e-4);
}

// The training path's gradients on the CPU: the chunked reference in float64 against central finite
// differences of the loss sum(y * gy) + sum(h_last * gh), for every input (x, dt, A, B, C, D, h0); and the
// float32 reference against the step-by-step definition for every input, through y and h_last.
TEST_CASE("selective scan: reference gradients equal finite differences and the definition", "[kernels]") {
  torch::manual_seed(33);
  const int64_t b = 2, t = 13, di = 3, n = 4;
  auto in = make(b, t, di, n);
  auto gy = torch::randn({b, t, di}, torch::kDouble), gh = torch::randn({b, di, n}, torch::kDouble);
  auto loss = [&](const std::vector<torch::Tensor>& v, bool chunked, int64_t chunk) {
    torch::Tensor hl;
    auto y = chunked ? lctx::kernels::selective_scan_reference(v[0], v[1], v[2], v[3], v[4], v[5], v[6], &hl, chunk)
                     : lctx::kernels::selective_scan_sequential(v[0], v[1], v[2], v[3], v[4], v[5], v[6], &hl);
    return (y.to(torch::kDouble) * gy).sum() + (hl.to(torch::kDouble) * gh).sum();
  };
  const std::vector<torch::Tensor> base = {in.x, in.dt, in.A, in.Bm, in.C, in.D, in.h0};
  const char* names[] = {"x", "dt", "A", "B", "C", "D", "h0"};
  std::vector<torch::Tensor> v64;
  for (auto& x : base) v64.push_back(x.to(torch::kDouble).requires_grad_(true));
  loss(v64, true, 5).backward();
  const double h = 1e-6;
  for (size_t i = 0; i < v64.size(); ++i) {
    torch::NoGradGuard ng;
    auto flat = v64[i].detach().reshape({-1});
    auto g = v64[i].grad().reshape({-1});
    double worst = 0;
    for (int64_t e = 0; e < flat.numel(); e += std::max<int64_t>(1, flat.numel() / 40)) {
      auto p = v64;
      for (auto& x : p) x = x.detach().clone();
      auto plus = p, minus = p;
      plus[i] = p[i].clone(), minus[i] = p[i].clone();
      plus[i].reshape({-1})[e] += h;
      minus[i].reshape({-1})[e] -= h;
      const double fd = (loss(plus, true, 5).item<double>() - loss(minus, true, 5).item<double>()) / (2 * h);
      worst = std::max(worst, std::abs(fd - g[e].item<double>()) / (1.0 + std::abs(fd)));
    }
    INFO("d" << names[i] << ": worst relative |fd - grad| " << worst);
    CHECK(worst < 1e-6);
  }
  // float32: chunked reference (chunk not dividing T) against the definition, all inputs, y and h_last
  auto grads32 = [&](bool chunked) {
    std::vector<torch::Tensor> v;
    for (auto& x : base) v.push_back(x.clone().requires_grad_(true));
    loss(v, chunked, 4).backward();
    std::vector<torch::Tensor> g;
    for (auto& x : v) g.push_back(x.grad());
    return g;
  };
  auto a = grads32(true), s = grads32(false);
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("d" << names[i]);
    CHECK(md(a[i], s[i]) / (1.0 + s[i].abs().max().item<double>()) < 1e-4);
  }
}

// The fused training scan (the CUDA kernels' chunked algorithm; on the CPU in plain loops): forward, the
// chunk start states and every gradient against the float64 reference, with D / h0 absent or present,
// h_last used, unused or not asked for, B and C as strided slices (as the Mamba mixer passes them), T not a
// multiple of the chunk, and N > 32 (16-step chunks).
TEST_CASE("selective scan: the fused training scan equals the reference, forward and gradients", "[kernels]") {
  torch::manual_seed(34);
  struct Case {
    int64_t b, t, di, n;
    bool h0, skip;
    int hl;  // 0: not asked for, 1: asked for, unused, 2: in the loss
  };
  const std::vector<Case> cases = {{2, 77, 5, 3, true, true, 2}, {1, 1, 4, 2, true, true, 2},
                                   {2, 40, 3, 40, false, true, 2}, {1, 100, 6, 16, false, false, 0},
                                   {3, 33, 4, 5, false, true, 1},  {1, 64, 2, 1, true, false, 2}};
  for (const auto& cs : cases) {
    auto in = make(cs.b, cs.t, cs.di, cs.n);
    auto bc = torch::randn({cs.b, cs.t, 2 * cs.n + 3});  // B and C as slices of one projection
    auto Bm = bc.slice(-1, 3, 3 + cs.n), C = bc.slice(-1, 3 + cs.n);
    auto gy = torch::randn({cs.b, cs.t, cs.di}, torch::kDouble), gh = torch::randn({cs.b, cs.di, cs.n}, torch::kDouble);
    const std::vector<torch::Tensor> base = {in.x, in.dt, in.A, Bm, C, cs.skip ? in.D : torch::Tensor(),
                                             cs.h0 ? in.h0 : torch::Tensor()};
    auto run = [&](bool fused, torch::ScalarType ty) {
      std::vector<torch::Tensor> v;
      for (auto& x : base) v.push_back(x.defined() ? x.to(ty).detach().requires_grad_(true) : x);
      torch::Tensor hl;
      auto y = fused ? lctx::kernels::selective_scan_fused(v[0], v[1], v[2], v[3], v[4], v[5], v[6],
                                                           cs.hl ? &hl : nullptr)
                     : lctx::kernels::selective_scan_reference(v[0], v[1], v[2], v[3], v[4], v[5], v[6], &hl, 16);
      auto loss = (y.to(torch::kDouble) * gy).sum();
      if (cs.hl == 2) loss = loss + (hl.to(torch::kDouble) * gh).sum();
      loss.backward();
      std::vector<torch::Tensor> out = {y.detach(), cs.hl ? hl.detach() : torch::Tensor()};
      for (auto& x : v) out.push_back(x.defined() ? x.grad() : torch::Tensor());
      return out;
    };
    auto ref = run(false, torch::kDouble), got = run(true, torch::kFloat);
    const char* names[] = {"y", "h_last", "dx", "ddt", "dA", "dB", "dC", "dD", "dh0"};
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("B" << cs.b << " T" << cs.t << " Di" << cs.di << " N" << cs.n << " " << names[i]);
      REQUIRE(got[i].defined() == ref[i].defined());
      if (!ref[i].defined()) continue;
      REQUIRE(got[i].scalar_type() == torch::kFloat);
      CHECK(md(got[i].to(torch::kDouble), ref[i]) / (1.0 + ref[i].abs().max().item<double>()) < 2e-5);
    }
  }
  auto in = make(1, 0, 3, 2);
  REQUIRE_THROWS(lctx::kernels::selective_scan_fused(in.x, in.dt, in.A, in.Bm, in.C, in.D, in.h0));
}
