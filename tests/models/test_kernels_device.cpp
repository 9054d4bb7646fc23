// Kernel dispatchers against float64 definitions on LCTX_TEST_DEVICE (cpu by default; cuda runs the CUDA
// kernels of kernels/cuda/ when lctx is built with LCTX_WITH_CUDA). Tolerance in the FlashAttention tests'
// manner: max |out - ref64| <= c * max |ref_lowp - ref64| + eps, where ref_lowp is the LibTorch reference run
// on the same device in the same dtype as the kernel, and ref64 the float64 definition on the CPU from the
// same (rounded) inputs. On CUDA the caching allocator is first filled with NaNs, so an output element the
// kernel forgets to write shows up. Each check prints one line: kernel, case, error, reference error, bound.
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cuda_ops.hpp"
#include "kernels/kernels.hpp"
#include "tests/catch.hpp"
#include "tests/models/model_test.hpp"

namespace {

namespace K = lctx::kernels;
constexpr double kInf = std::numeric_limits<double>::infinity();

torch::Device dev() { return lctx_test::test_device(); }
bool on_cuda() { return dev().is_cuda(); }
// With CUDA kernels built and a CUDA test device, the dispatchers must take the CUDA path.
[[maybe_unused]] bool expect_cuda_path() { return on_cuda() && K::cuda_kernels_built(); }

void poison() {
  if (!on_cuda()) return;
  // Large blocks (> 1 MB) and the small-block pool; freed, they go back to the caching allocator, so the next
  // allocations start as NaN.
  auto o = torch::TensorOptions().device(dev());
  std::vector<torch::Tensor> keep;
  keep.push_back(torch::full({int64_t(64) << 20}, std::nan(""), o));
  for (int i = 0; i < 64; ++i) keep.push_back(torch::full({int64_t(1) << 18}, std::nan(""), o));
  for (int i = 0; i < 256; ++i) keep.push_back(torch::full({int64_t(1) << 12}, std::nan(""), o));
}

const char* dname(torch::ScalarType t) {
  return t == torch::kFloat ? "f32" : t == torch::kBFloat16 ? "bf16" : t == torch::kHalf ? "f16" : "f64";
}

// eps: absolute slack, relative to the size of the reference values (fp32 reorderings, exp approximations).
// ref_low: the float64 value `low` approximates (defaults to ref64).
void check_close(const std::string& what, const torch::Tensor& got, const torch::Tensor& low, const torch::Tensor& ref64,
                 double c, double rel_eps, const torch::Tensor& ref_low = torch::Tensor()) {
  REQUIRE(got.sizes() == ref64.sizes());
  auto g = got.detach().to(torch::kCPU, torch::kDouble), l = low.detach().to(torch::kCPU, torch::kDouble);
  auto r = ref64.detach().to(torch::kCPU, torch::kDouble);
  auto rl = ref_low.defined() ? ref_low.detach().to(torch::kCPU, torch::kDouble) : r;
  const bool finite = torch::isfinite(g).all().item<bool>() || !torch::isfinite(r).all().item<bool>();
  const double scale = r.numel() ? r.abs().max().item<double>() : 0.0;
  const double eg = g.numel() ? (g - r).abs().max().item<double>() : 0.0;
  const double el = l.numel() ? (l - rl).abs().max().item<double>() : 0.0;
  const double bound = c * el + rel_eps * (1.0 + scale);
  std::printf("[kernels:%s] %-58s max|err| %.3e  ref_lowp %.3e  bound %.3e  %s\n", dev().str().c_str(), what.c_str(),
              eg, el, bound, (finite && eg <= bound) ? "ok" : "FAIL");
  INFO(what << ": max|out - ref64| " << eg << ", max|ref_lowp - ref64| " << el << ", bound " << bound);
  CHECK(finite);
  CHECK(eg <= bound);
}

double rel_eps_for(torch::ScalarType t) { return t == torch::kFloat ? 2e-5 : 2e-3; }

// ---- window attention ------------------------------------------------------------------------------------

TEST_CASE("device kernels: window attention equals the float64 definition", "[kernels][device]") {
  torch::manual_seed(101);
  struct Case {
    int64_t b, h, tq, past, d, window;
  };
  const std::vector<Case> cases = {{2, 3, 70, 0, 32, 16},    {1, 4, 300, 0, 64, 128}, {2, 2, 33, 50, 40, 37},
                                   {1, 2, 17, 200, 128, 300}, {1, 1, 5, 3, 256, 1},    {1, 4, 129, 0, 32, 1000}};
  for (auto dt : {torch::kFloat, torch::kBFloat16}) {
    for (const auto& cs : cases) {
      const int64_t tk = cs.tq + cs.past;
      auto mk = [&](int64_t t) { return torch::randn({cs.b, cs.h, t, cs.d}).to(dt); };
      auto q = mk(cs.tq), k = mk(tk), v = mk(tk);
      const int64_t q_pos0 = 1000 + cs.past, k_pos0 = 1000;
      auto ref64 = K::window_attention_dense(q.to(torch::kDouble), k.to(torch::kDouble), v.to(torch::kDouble),
                                             cs.window, q_pos0, k_pos0);
      auto qd = q.to(dev()), kd = k.to(dev()), vd = v.to(dev());
      torch::NoGradGuard ng;
      auto low = K::window_attention_reference(qd, kd, vd, cs.window, q_pos0, k_pos0);
#ifdef LCTX_HAVE_CUDA_KERNELS
      if (expect_cuda_path()) REQUIRE(K::cuda::window_attention_supported(qd, kd, vd));
#endif
      poison();
      auto got = K::window_attention(qd, kd, vd, cs.window, q_pos0, k_pos0);
      check_close(std::string("window ") + dname(dt) + " T" + std::to_string(cs.tq) + "+" + std::to_string(cs.past) +
                      " D" + std::to_string(cs.d) + " W" + std::to_string(cs.window),
                  got, low, ref64, 2.0, rel_eps_for(dt));
    }
  }
}

// Training path: window_attention under autograd (the blocked form), output and gradients of q, k, v.
TEST_CASE("device kernels: window attention under autograd, forward and backward", "[kernels][device]") {
  torch::manual_seed(105);
  struct Case {
    int64_t b, h, t, d, window;
  };
  const std::vector<Case> cases = {{2, 3, 700, 32, 128}, {1, 2, 50, 16, 5},  {2, 4, 513, 32, 64},
                                   {1, 1, 300, 64, 1},   {1, 2, 200, 32, 300}, {2, 2, 1024, 32, 17}};
  for (auto dt : {torch::kFloat, torch::kBFloat16}) {
    for (const auto& cs : cases) {
      auto mk = [&] { return torch::randn({cs.b, cs.h, cs.t, cs.d}).to(dt); };
      auto q = mk(), k = mk(), v = mk();
      auto dy = torch::randn({cs.b, cs.h, cs.t, cs.d}).to(dt);
      // float64 definition and its gradients (CPU)
      auto run = [&](const torch::Tensor& q0, const torch::Tensor& k0, const torch::Tensor& v0, const torch::Tensor& g0,
                     bool dense) {
        auto qq = q0.detach().clone().requires_grad_(true), kk = k0.detach().clone().requires_grad_(true),
             vv = v0.detach().clone().requires_grad_(true);
        auto y = dense ? K::window_attention_dense(qq, kk, vv, cs.window, 0, 0)
                       : K::window_attention(qq, kk, vv, cs.window, 0, 0);
        (y.to(torch::kFloat) * g0.to(torch::kFloat)).sum().backward();
        return std::vector<torch::Tensor>{y.detach(), qq.grad(), kk.grad(), vv.grad()};
      };
      auto d64 = [](const torch::Tensor& x) { return x.to(torch::kDouble); };
      auto ref = run(d64(q), d64(k), d64(v), d64(dy), true);
      auto low = run(q.to(dev()), k.to(dev()), v.to(dev()), dy.to(dev()), true);
      poison();
      auto got = run(q.to(dev()), k.to(dev()), v.to(dev()), dy.to(dev()), false);
      const char* names[] = {"out", "dq", "dk", "dv"};
      for (int i = 0; i < 4; ++i)
        check_close(std::string("window-train ") + names[i] + " " + dname(dt) + " T" + std::to_string(cs.t) + " D" +
                        std::to_string(cs.d) + " W" + std::to_string(cs.window),
                    got[i], low[i], ref[i], 3.0, 4 * rel_eps_for(dt));
    }
  }
}

// ---- landmark scoring + top-k ----------------------------------------------------------------------------

// Tie-robust: the kernel's chosen chunks must be visible, distinct, as many as min(k, visible), sorted by
// score, and their float64 scores must reach the true k-th best within the reference's own rounding error.
TEST_CASE("device kernels: select_chunks picks the float64 top-k of the visible prefix", "[kernels][device]") {
  torch::manual_seed(102);
  struct Case {
    int64_t tq, n, d, k;
  };
  const std::vector<Case> cases = {{20, 5, 16, 8}, {37, 1000, 64, 8}, {64, 70000, 128, 64}, {9, 3000, 100, 1},
                                   {256, 20000, 32, 32}};
  for (auto dt : {torch::kFloat, torch::kBFloat16}) {
    for (const auto& cs : cases) {
      auto q = torch::randn({cs.tq, cs.d}).to(dt), lm = torch::randn({cs.n, cs.d}).to(dt);
      // visible: 0, 1, below k, random, all
      auto vis = torch::randint(0, cs.n + 1, {cs.tq}, torch::kInt64);
      vis[0] = 0;
      if (cs.tq > 1) vis[1] = 1;
      if (cs.tq > 2) vis[2] = std::max<int64_t>(0, std::min(cs.n, cs.k - 1));
      if (cs.tq > 3) vis[3] = cs.n;
      const double scale = 1.0 / std::sqrt(double(cs.d));
      auto s64 = torch::matmul(q.to(torch::kDouble), lm.to(torch::kDouble).t()) * scale;  // [Tq, N]
      auto hidden = torch::arange(cs.n, torch::kInt64).unsqueeze(0).ge(vis.unsqueeze(1));
      auto masked = s64.masked_fill(hidden, -kInf);
      const int64_t kk = std::min(cs.k, cs.n);
      auto true_top = std::get<0>(masked.topk(kk, -1));  // [Tq, kk] sorted, -inf where fewer visible
      auto qd = q.to(dev()), ld = lm.to(dev()), vd = vis.to(dev());
      auto low = K::select_chunks_reference(qd, ld, vd, cs.k, scale);
#ifdef LCTX_HAVE_CUDA_KERNELS
      if (expect_cuda_path()) REQUIRE(K::cuda::select_chunks_supported(qd, ld, cs.k));
#endif
      poison();
      auto sel = K::select_chunks(qd, ld, vd, cs.k, scale);
      REQUIRE(sel.idx.sizes() == torch::IntArrayRef({cs.tq, kk}));
      REQUIRE(sel.scores.sizes() == torch::IntArrayRef({cs.tq, kk}));
      auto idx = sel.idx.cpu(), sc = sel.scores.to(torch::kCPU, torch::kDouble), lidx = low.idx.cpu();
      // the float64 scores of the chosen chunks (-inf in empty slots)
      auto chosen64 = s64.gather(1, idx.clamp_min(0)).masked_fill(idx.lt(0), -kInf);
      auto low64 = s64.gather(1, lidx.clamp_min(0)).masked_fill(lidx.lt(0), -kInf);
      const std::string tag = std::string(dname(dt)) + " Tq" + std::to_string(cs.tq) + " N" + std::to_string(cs.n) +
                              " d" + std::to_string(cs.d) + " k" + std::to_string(cs.k);
      bool structure_ok = true;
      for (int64_t t = 0; t < cs.tq; ++t) {
        const int64_t want = std::min(kk, std::min(cs.n, vis[t].item<int64_t>()));
        std::vector<int64_t> seen;
        for (int64_t j = 0; j < kk; ++j) {
          const int64_t c = idx[t][j].item<int64_t>();
          if (j < want) {
            structure_ok &= c >= 0 && c < vis[t].item<int64_t>();
            for (auto s : seen) structure_ok &= s != c;
            seen.push_back(c);
            if (j > 0) structure_ok &= sc[t][j].item<double>() <= sc[t][j - 1].item<double>();
          } else {
            structure_ok &= c == -1 && sc[t][j].item<double>() == -kInf;
          }
        }
      }
      INFO(tag);
      CHECK(structure_ok);
      // finite parts only (empty slots agree by the structure check)
      auto fin = torch::isfinite(true_top);
      auto z = [&](const torch::Tensor& x) { return x.masked_fill(fin.logical_not(), 0.0); };
      check_close("select chosen-score " + tag, z(chosen64), z(low64), z(true_top), 2.0, 1e-5);
      check_close("select returned-score " + tag, z(sc), z(low.scores.to(torch::kCPU, torch::kDouble)), z(chosen64),
                  2.0, dt == torch::kFloat ? 1e-5 : 1e-2, z(low64));
    }
  }
}

// ---- chunk attention (inference) ---------------------------------------------------------------------------

struct ChunkInputs {
  torch::Tensor q, idx, w, k, v;  // q [B, H, T, D], idx/w [B, T, K], k/v [B, N, Hkv, S, D] (CPU, dtype)
};

// Distinct random chunks per row, some slots empty, some rows entirely empty; w: positive weights or (joint)
// biases with a few -inf.
ChunkInputs chunk_inputs(int64_t b, int64_t h, int64_t hkv, int64_t t, int64_t n, int64_t s, int64_t d, int64_t kk,
                         bool joint, torch::ScalarType dt, torch::ScalarType kvdt) {
  ChunkInputs in;
  in.q = torch::randn({b, h, t, d}).to(dt);
  in.k = torch::randn({b, n, hkv, s, d}).to(kvdt);
  in.v = torch::randn({b, n, hkv, s, d}).to(kvdt);
  in.idx = torch::full({b, t, kk}, -1, torch::kInt64);
  auto acc = in.idx.accessor<int64_t, 3>();
  for (int64_t bb = 0; bb < b; ++bb)
    for (int64_t tt = 0; tt < t; ++tt) {
      if (tt % 7 == 3) continue;  // an empty row
      auto perm = torch::randperm(n, torch::kInt64);
      for (int64_t j = 0; j < std::min(kk, n); ++j)
        if ((tt + j) % 5 != 4) acc[bb][tt][j] = perm[j].item<int64_t>();  // some empty slots
    }
  if (!joint) {
    in.w = torch::rand({b, t, kk}) + 0.1;
  } else {
    in.w = torch::randn({b, t, kk});
    in.w.masked_fill_(torch::rand({b, t, kk}).lt(0.1), -kInf);
  }
  return in;
}

TEST_CASE("device kernels: chunk attention (chunk and joint fusion, grouped-query) equals the float64 reference",
          "[kernels][device]") {
  torch::manual_seed(103);
  struct Case {
    int64_t h, hkv, t, n, s, d, k;
  };
  // hsa-tiny (4 heads x 32, S 64, K 8); paper-like GQA (16 q heads / 1 kv head, D 64); odd sizes
  const std::vector<Case> cases = {{4, 4, 40, 30, 64, 32, 8}, {16, 1, 24, 20, 64, 64, 8}, {6, 2, 19, 9, 40, 48, 5},
                                   {2, 1, 10, 50, 128, 128, 32}};
  struct Types {
    torch::ScalarType q, kv;
  };
  for (auto ty : {Types{torch::kFloat, torch::kFloat}, Types{torch::kBFloat16, torch::kBFloat16},
                  Types{torch::kFloat, torch::kBFloat16}}) {
    for (const auto& cs : cases) {
      for (bool joint : {false, true}) {
        auto in = chunk_inputs(1, cs.h, cs.hkv, cs.t, cs.n, cs.s, cs.d, cs.k, joint, ty.q, ty.kv);
        auto q = in.q[0], idx = in.idx[0], w = in.w[0], k = in.k[0], v = in.v[0];
        const double scale = 1.0 / std::sqrt(double(cs.d));
        auto f64 = [](const torch::Tensor& x) { return x.to(torch::kDouble); };
        auto ref64 = joint ? K::chunk_attention_joint_reference(f64(q), idx, f64(w), f64(k), f64(v), scale)
                           : K::chunk_attention_reference(f64(q), idx, f64(w), f64(k), f64(v), scale);
        auto qd = q.to(dev()), id = idx.to(dev()), wd = w.to(dev()), kd = k.to(dev()), vd = v.to(dev());
        torch::NoGradGuard ng;
        auto low = joint ? K::chunk_attention_joint_reference(qd, id, wd, kd, vd, scale)
                         : K::chunk_attention_reference(qd, id, wd, kd, vd, scale);
#ifdef LCTX_HAVE_CUDA_KERNELS
        if (expect_cuda_path()) REQUIRE(K::cuda::chunk_attention_supported(qd, kd));
#endif
        poison();
        auto got = joint ? K::chunk_attention_joint(qd, id, wd, kd, vd, scale) : K::chunk_attention(qd, id, wd, kd, vd, scale);
        REQUIRE(got.scalar_type() == q.scalar_type());
        check_close(std::string(joint ? "chunk-attn joint " : "chunk-attn chunk ") + dname(ty.q) + "/" + dname(ty.kv) +
                        " H" + std::to_string(cs.h) + "/" + std::to_string(cs.hkv) + " S" + std::to_string(cs.s) +
                        " D" + std::to_string(cs.d) + " K" + std::to_string(cs.k),
                    got, low, ref64, 2.0, rel_eps_for(ty.kv == torch::kFloat ? ty.q : ty.kv));
      }
    }
  }
}

// ---- chunk attention (training: forward and backward) ------------------------------------------------------

TEST_CASE("device kernels: chunk_attention_train forward and gradients equal the float64 reference",
          "[kernels][device]") {
  torch::manual_seed(104);
  struct Case {
    int64_t b, h, hkv, t, n, s, d, k;
  };
  const std::vector<Case> cases = {{2, 4, 4, 33, 12, 64, 32, 8}, {1, 16, 1, 20, 10, 64, 64, 4},
                                   {2, 4, 2, 15, 7, 24, 40, 3}};
  for (auto dt : {torch::kFloat, torch::kBFloat16}) {
    for (const auto& cs : cases) {
      for (bool joint : {false, true}) {
        auto in = chunk_inputs(cs.b, cs.h, cs.hkv, cs.t, cs.n, cs.s, cs.d, cs.k, joint, dt, dt);
        auto w = in.w.to(dt);
        auto gout = torch::randn({cs.b, cs.h, cs.t, cs.d});
        const double scale = 1.0 / std::sqrt(double(cs.d));
        // out and the gradients of sum(out * gout) w.r.t. q, w, k, v
        auto run = [&](bool reference, torch::Device device, torch::ScalarType ty) {
          auto leaf = [&](const torch::Tensor& x) { return x.to(device, ty).detach().requires_grad_(true); };
          auto q = leaf(in.q), ww = leaf(w), k = leaf(in.k), v = leaf(in.v);
          auto id = in.idx.to(device);
          if (!reference) poison();
          auto out = reference ? K::chunk_attention_train_reference(q, id, ww, k, v, scale, joint)
                               : K::chunk_attention_train(q, id, ww, k, v, scale, joint);
          (out.to(torch::kDouble) * gout.to(device, torch::kDouble)).sum().backward();
          return std::vector<torch::Tensor>{out, q.grad(), ww.grad(), k.grad(), v.grad()};
        };
        auto ref64 = run(true, torch::kCPU, torch::kDouble);
        auto low = run(true, dev(), dt);
#ifdef LCTX_HAVE_CUDA_KERNELS
        if (expect_cuda_path()) REQUIRE(K::cuda::chunk_attention_supported(in.q.to(dev()), in.k.to(dev())));
#endif
        auto got = run(false, dev(), dt);
        const char* names[] = {"out", "dq", "dw", "dk", "dv"};
        for (int i = 0; i < 5; ++i) {
          REQUIRE(got[i].defined());
          auto r = ref64[i], l = low[i], g = got[i];
          if (i == 2 && joint) {  // -inf biases: gradient 0 in every version; compare the finite slots
            auto fin = torch::isfinite(in.w);
            r = r.masked_fill(fin.logical_not(), 0.0), l = l.masked_fill(fin.logical_not().to(l.device()), 0.0);
            g = g.masked_fill(fin.logical_not().to(g.device()), 0.0);
          }
          check_close(std::string("chunk-train ") + (joint ? "joint " : "chunk ") + names[i] + " " + dname(dt) +
                          " B" + std::to_string(cs.b) + " H" + std::to_string(cs.h) + "/" + std::to_string(cs.hkv) +
                          " S" + std::to_string(cs.s) + " D" + std::to_string(cs.d),
                      g, l, r, i == 0 ? 2.0 : 3.0, rel_eps_for(dt));
        }
      }
    }
  }
}

TEST_CASE("device kernels: chunk_attention_train with one batch equals the inference chunk attention",
          "[kernels][device]") {
  torch::manual_seed(105);
  for (bool joint : {false, true}) {
    auto in = chunk_inputs(1, 4, 2, 21, 9, 16, 32, 4, joint, torch::kFloat, torch::kFloat);
    torch::NoGradGuard ng;
    auto a = K::chunk_attention_train(in.q.to(dev()), in.idx.to(dev()), in.w.to(dev()), in.k.to(dev()),
                                      in.v.to(dev()), 0.3, joint)[0];
    auto b = joint ? K::chunk_attention_joint(in.q[0].to(dev()), in.idx[0].to(dev()), in.w[0].to(dev()),
                                              in.k[0].to(dev()), in.v[0].to(dev()), 0.3)
                   : K::chunk_attention(in.q[0].to(dev()), in.idx[0].to(dev()), in.w[0].to(dev()),
                                        in.k[0].to(dev()), in.v[0].to(dev()), 0.3);
    CHECK((a - b).abs().max().item<double>() < 1e-5);
  }
  // bad shapes: one-line errors
  auto in = chunk_inputs(1, 4, 3, 5, 4, 8, 16, 2, false, torch::kFloat, torch::kFloat);
  REQUIRE_THROWS(K::chunk_attention_train(in.q.to(dev()), in.idx.to(dev()), in.w.to(dev()), in.k.to(dev()),
                                          in.v.to(dev()), 0.3, false));
}

// ---- selective scan ----------------------------------------------------------------------------------------

// The recurrence in float64 with plain loops: y [B, T, Di], h_last [B, Di, N].
std::pair<torch::Tensor, torch::Tensor> scan64(const torch::Tensor& x_, const torch::Tensor& dt_, const torch::Tensor& A_,
                                               const torch::Tensor& B_, const torch::Tensor& C_, const torch::Tensor& D_,
                                               const torch::Tensor& h0_) {
  auto f = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kDouble).contiguous(); };
  auto x = f(x_), dt = f(dt_), A = f(A_), Bm = f(B_), C = f(C_);
  const int64_t nb = x.size(0), nt = x.size(1), di = x.size(2), ns = A.size(1);
  auto h = h0_.defined() ? f(h0_).clone() : torch::zeros({nb, di, ns}, torch::kDouble);
  auto y = torch::zeros({nb, nt, di}, torch::kDouble);
  auto px = x.accessor<double, 3>(), pdt = dt.accessor<double, 3>(), pb = Bm.accessor<double, 3>(),
       pc = C.accessor<double, 3>();
  auto pa = A.accessor<double, 2>();
  auto ph = h.accessor<double, 3>();
  auto py = y.accessor<double, 3>();
  torch::Tensor Dd = D_.defined() ? f(D_) : torch::zeros({di}, torch::kDouble);
  auto pd = Dd.accessor<double, 1>();
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t d = 0; d < di; ++d)
      for (int64_t t = 0; t < nt; ++t) {
        double acc = 0;
        for (int64_t n = 0; n < ns; ++n) {
          ph[b][d][n] = std::exp(pdt[b][t][d] * pa[d][n]) * ph[b][d][n] + pdt[b][t][d] * pb[b][t][n] * px[b][t][d];
          acc += pc[b][t][n] * ph[b][d][n];
        }
        py[b][t][d] = acc + pd[d] * px[b][t][d];
      }
  return {y, h};
}

TEST_CASE("device kernels: selective scan (recurrent and chunked) equals the float64 recurrence", "[kernels][device]") {
  torch::manual_seed(106);
  struct Case {
    int64_t b, t, di, n;
    bool h0, skip;
  };
  const std::vector<Case> cases = {{2, 1, 40, 16, true, true}, {1, 100, 256, 16, false, true},
                                   {2, 3000, 24, 5, true, false}, {1, 777, 130, 64, true, true}};
  for (auto dt : {torch::kFloat, torch::kBFloat16}) {
    for (const auto& cs : cases) {
      auto x = torch::randn({cs.b, cs.t, cs.di}).to(dt);
      auto dtt = torch::softplus(torch::randn({cs.b, cs.t, cs.di}) - 2.0).to(dt);
      auto A = -torch::exp(torch::randn({cs.di, cs.n}));
      auto Bm = torch::randn({cs.b, cs.t, cs.n}).to(dt), C = torch::randn({cs.b, cs.t, cs.n}).to(dt);
      auto D = cs.skip ? torch::randn({cs.di}) : torch::Tensor();
      auto h0 = cs.h0 ? torch::randn({cs.b, cs.di, cs.n}) : torch::Tensor();
      auto r64 = scan64(x, dtt, A, Bm, C, D, h0);
      auto to = [&](const torch::Tensor& t) { return t.defined() ? t.to(dev()) : t; };
      torch::NoGradGuard ng;
      torch::Tensor hl_low, hl;
      auto low = K::selective_scan_reference(to(x), to(dtt), to(A), to(Bm), to(C), to(D), to(h0), &hl_low, 64);
#ifdef LCTX_HAVE_CUDA_KERNELS
      if (expect_cuda_path()) REQUIRE(K::cuda::selective_scan_supported(to(x), to(A)));
#endif
      poison();
      auto y = K::selective_scan(to(x), to(dtt), to(A), to(Bm), to(C), to(D), to(h0), &hl);
      const std::string tag = std::string(dname(dt)) + " B" + std::to_string(cs.b) + " T" + std::to_string(cs.t) +
                              " Di" + std::to_string(cs.di) + " N" + std::to_string(cs.n);
      check_close("scan y " + tag, y, low, r64.first, 3.0, rel_eps_for(dt));
      check_close("scan h_last " + tag, hl, hl_low, r64.second, 3.0, 2e-5);
    }
  }
}

// Training: forward and gradients of sum(y * gy) + sum(h_last * gh) with respect to every input, the
// dispatcher (CUDA forward + backward kernels on a GPU) against the chunked reference in float64 (on the
// test device), with the float32/bf16 reference as the own-error yardstick. Shapes: decoding (T 1), odd T,
// Di and N, N 1 and 64, the mamba-paper mixer (Di 256, N 16) at T 4096, inputs of mixed dtypes (autocast).
TEST_CASE("device kernels: selective scan gradients (training) equal the float64 reference", "[kernels][device]") {
  torch::manual_seed(107);
  struct Case {
    int64_t b, t, di, n;
    bool h0, skip;
  };
  const std::vector<Case> cases = {{2, 1, 40, 16, true, true},     {2, 77, 24, 5, true, true},
                                   {3, 50, 33, 1, false, true},    {1, 333, 130, 64, true, false},
                                   {2, 95, 16, 32, true, true},    {1, 1000, 256, 16, false, true},
                                   {2, 4096, 256, 16, false, true}, {1, 4099, 64, 16, true, true}};
  struct Types {
    torch::ScalarType x, dt;
  };
  for (auto ty : {Types{torch::kFloat, torch::kFloat}, Types{torch::kBFloat16, torch::kBFloat16},
                  Types{torch::kBFloat16, torch::kFloat}}) {
    for (const auto& cs : cases) {
      if (ty.x != ty.dt && cs.t != 1000) continue;  // the mixed-dtype (autocast) case on one shape
      if (!on_cuda() && cs.b * cs.t * cs.di > 100000) continue;  // the long shapes on a GPU only (CI time)
      auto x = torch::randn({cs.b, cs.t, cs.di}).to(ty.x);
      auto dtt = torch::softplus(torch::randn({cs.b, cs.t, cs.di}) - 2.0).to(ty.dt);
      auto A = -torch::exp(torch::randn({cs.di, cs.n}));
      auto Bm = torch::randn({cs.b, cs.t, cs.n}).to(ty.x), C = torch::randn({cs.b, cs.t, cs.n}).to(ty.x);
      auto D = cs.skip ? torch::randn({cs.di}) : torch::Tensor();
      auto h0 = cs.h0 ? torch::randn({cs.b, cs.di, cs.n}) : torch::Tensor();
      auto gy = torch::randn({cs.b, cs.t, cs.di}), gh = torch::randn({cs.b, cs.di, cs.n});
      const std::vector<torch::Tensor> in = {x, dtt, A, Bm, C, D, h0};
      // y, h_last and the gradients of every defined input
      auto run = [&](int impl, torch::ScalarType force) {  // 0 dispatcher, 1 reference; force: kDouble or none
        std::vector<torch::Tensor> v;
        for (auto& t : in) {
          if (!t.defined()) { v.push_back(t); continue; }
          auto d = force == torch::kDouble ? t.to(dev(), torch::kDouble) : t.to(dev());
          v.push_back(d.detach().requires_grad_(true));
        }
        if (impl == 0) poison();
        torch::Tensor hl;
        auto y = impl == 0 ? K::selective_scan(v[0], v[1], v[2], v[3], v[4], v[5], v[6], &hl)
                           : K::selective_scan_reference(v[0], v[1], v[2], v[3], v[4], v[5], v[6], &hl, 64);
        auto l = (y.to(torch::kDouble) * gy.to(dev(), torch::kDouble)).sum() +
                 (hl.to(torch::kDouble) * gh.to(dev(), torch::kDouble)).sum();
        l.backward();
        std::vector<torch::Tensor> out = {y.detach(), hl.detach()};
        for (auto& t : v) out.push_back(t.defined() ? t.grad() : torch::Tensor());
        return out;
      };
      auto ref64 = run(1, torch::kDouble);
      auto low = run(1, torch::kFloat);
#ifdef LCTX_HAVE_CUDA_KERNELS
      if (expect_cuda_path()) REQUIRE(K::cuda::selective_scan_supported(x.to(dev()), A.to(dev())));
#endif
      auto got = run(0, torch::kFloat);
      const char* names[] = {"y", "h_last", "dx", "ddt", "dA", "dB", "dC", "dD", "dh0"};
      const std::string tag = std::string(dname(ty.x)) + (ty.x != ty.dt ? "/dt f32" : "") + " B" +
                              std::to_string(cs.b) + " T" + std::to_string(cs.t) + " Di" + std::to_string(cs.di) +
                              " N" + std::to_string(cs.n);
      for (size_t i = 0; i < got.size(); ++i) {
        if (!ref64[i].defined()) continue;
        REQUIRE(got[i].defined());
        REQUIRE(got[i].scalar_type() == low[i].scalar_type());
        const auto lowt = (i == 3) ? ty.dt : (i == 2 || i == 5 || i == 6 || i == 0) ? ty.x : torch::kFloat;
        check_close(std::string("scan-train ") + names[i] + " " + tag, got[i], low[i], ref64[i], i < 2 ? 2.0 : 3.0,
                    rel_eps_for(lowt));
      }
    }
  }
}

}  // namespace
