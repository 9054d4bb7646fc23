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
