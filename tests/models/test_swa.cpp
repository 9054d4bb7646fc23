// SWA baseline: config validation, streamed prefill over block sizes equals one forward_logits, generation.
#include <cmath>

#include "models/prune.hpp"
#include "models/swa.hpp"
#include "core/error.hpp"
#include "tests/catch.hpp"
#include "tests/models/model_test.hpp"

using namespace lctx::models;

namespace {
// Float32 tolerance of streamed vs full logits: the same sums in another grouping (blockwise softmax,
// different matmul shapes) differ by a few ulp per layer; logits are O(1).
constexpr double kTol = 1e-4;

std::shared_ptr<Model> small_swa() {
  torch::manual_seed(11);
  return build_model({{"kind", "swa"}, {"preset", "tiny"}, {"vocab", 512}, {"d_model", 64}, {"n_layers", 2},
                      {"n_heads", 4}, {"window", 24}, {"prefill_block", 50}});
}

double stream_diff(Model& m, const torch::Tensor& ids, int64_t block) {
  torch::NoGradGuard ng;
  auto full = m.forward_logits(ids.unsqueeze(0)).squeeze(0);  // [T, V]
  auto st = m.begin();
  double worst = 0;
  for (int64_t p = 0; p < ids.size(0); p += block) {
    const int64_t n = std::min<int64_t>(block, ids.size(0) - p);
    auto last = m.prefill(*st, ids.slice(0, p, p + n));
    worst = std::max(worst, (last - full[p + n - 1]).abs().max().item<double>());
  }
  REQUIRE(st->position == ids.size(0));
  return worst;
}
}  // namespace

TEST_CASE("swa config: presets, round trip, unknown keys", "[swa]") {
  auto c = SwaConfig::from_json({{"kind", "swa"}, {"preset", "small"}});
  REQUIRE(c.d_model == 512);
  REQUIRE(SwaConfig::from_json(c.to_json()).to_json() == c.to_json());
  REQUIRE_THROWS_WITH(build_model({{"kind", "swa"}, {"windw", 3}}), "swa config: unknown key 'windw'");
  REQUIRE_THROWS_AS(build_model({{"kind", "swa"}, {"d_model", 30}, {"n_heads", 4}}), lctx::Error);
  REQUIRE_THROWS_AS(build_model({{"kind", "swa"}, {"preset", "huge"}}), lctx::Error);
  REQUIRE_THROWS_AS(build_model({{"kind", "nope"}}), lctx::Error);
  REQUIRE_THROWS_AS(build_model({{"d_model", 3}}), lctx::Error);
  auto m = build_model({{"kind", "swa"}, {"preset", "tiny"}});
  REQUIRE(m->kind() == "swa");
  REQUIRE(m->vocab_size() == 8192);
  REQUIRE(m->config()["window"] == 256);
}

TEST_CASE("swa: streamed prefill equals the full forward for every block size", "[swa]") {
  auto m = small_swa();
  m->eval();
  m->to(lctx_test::test_device());
  torch::manual_seed(12);
  auto ids = torch::randint(0, 512, {160}, torch::kLong).to(lctx_test::test_device());  // > window, > prefill_block
  for (int64_t block : {1, 7, 64, 160}) {
    INFO("block " << block << " on " << lctx_test::test_device());
    CHECK(stream_diff(*m, ids, block) < lctx_test::device_tol(kTol));
  }
}

TEST_CASE("swa: the window bounds what the model sees", "[swa]") {
  auto m = small_swa();
  torch::NoGradGuard ng;
  torch::manual_seed(13);
  auto ids = torch::randint(0, 512, {1, 120}, torch::kLong);
  auto ids2 = ids.clone();
  ids2.slice(1, 0, 10).random_(0, 512);
  auto a = m->forward_logits(ids), b = m->forward_logits(ids2);
  // 2 layers x window 24: position p depends on tokens >= p - 2*23.
  REQUIRE((a.slice(1, 60) - b.slice(1, 60)).abs().max().item<double>() == 0.0);
  REQUIRE((a.slice(1, 10, 20) - b.slice(1, 10, 20)).abs().max().item<double>() > 1e-5);
}

TEST_CASE("swa: greedy generation pushes its tokens and stops at eos", "[swa]") {
  auto m = small_swa();
  torch::manual_seed(14);
  auto ids = torch::randint(0, 512, {30}, torch::kLong);
  auto st = m->begin();
  auto last = m->prefill(*st, ids);
  auto out = m->generate(*st, last, 5, -1);
  REQUIRE(out.size() == 5);
  REQUIRE(st->position == 35);
  // The same continuation, recomputed with forward_logits token by token.
  std::vector<int64_t> seq(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + 30);
  {
    torch::NoGradGuard ng;
    for (int i = 0; i < 5; ++i) {
      auto lg = m->forward_logits(torch::tensor(seq).unsqueeze(0))[0][-1];
      REQUIRE(lg.argmax().item<int64_t>() == out[i]);
      seq.push_back(out[i]);
    }
  }
  // eos = the first generated token: nothing is returned and nothing pushed.
  auto st2 = m->begin();
  auto last2 = m->prefill(*st2, ids);
  REQUIRE(m->generate(*st2, last2, 5, out[0]).empty());
  REQUIRE(st2->position == 30);
  REQUIRE_THROWS_AS(m->prefill(*st2, torch::tensor({int64_t(512)})), lctx::Error);
  REQUIRE_THROWS_AS(m->prefill(*st2, torch::zeros({0}, torch::kLong)), lctx::Error);
}

TEST_CASE("swa: training step reduces the loss (gradients flow)", "[swa]") {
  auto m = small_swa();
  m->train();
  torch::manual_seed(15);
  auto ids = torch::randint(0, 512, {2, 65}, torch::kLong);
  auto [l0, l1] = lctx_test::loss_before_after_10_steps(*m, ids, 512);
  REQUIRE(l1 < l0 - 0.5);
}

TEST_CASE("swa pruned prefill: same last logits, decoding and tokens as the full path", "[swa][prune]") {
  // 2 layers, window 24: the pruned bound is 2 * 23 + 1 = 47 positions (embedding included).
  auto m = small_swa();
  m->to(lctx_test::test_device());
  for (int64_t t : {int64_t(7), int64_t(47), int64_t(48), int64_t(130), int64_t(333)}) {
    auto g = torch::make_generator<torch::CPUGeneratorImpl>(t);
    auto ids = torch::randint(512, {t}, g, torch::kInt64).to(lctx_test::test_device());
    const std::pair<int64_t, int64_t> modes[] = {{0, 0}, {0, 10}, {0, 1000}, {31, 0}, {60, 7}};
    for (auto [call, block] : modes) {
      auto r = lctx_test::prune_vs_full(*m, ids, call, block, 6);
      INFO("T " << t << " call " << call << " block " << block << " diff " << r.worst);
      CHECK(r.worst < lctx_test::device_tol(kTol));
      CHECK(r.same_tokens);
      CHECK(r.pruned_rows <= r.full_rows);
      if (t == 333 && call == 0) CHECK(r.pruned_rows < r.full_rows / 3);
    }
  }
}

TEST_CASE("receptive_rows: windows add up, leaders pull back to the chunk start, clamped to the call", "[prune]") {
  // 3 layers of window 5 (reach 4), call pushing 100..199
  auto r = receptive_rows(100, 199, {4, 4, 4}, {});
  REQUIRE(r.size() == 3);
  CHECK(r[2].out0 == 199);
  CHECK(r[2].in0 == 195);
  CHECK(r[1].out0 == 195);
  CHECK(r[1].in0 == 191);
  CHECK(r[0].out0 == 191);
  CHECK(r[0].in0 == 187);  // L(W - 1) + 1 = 13 positions
  // chunk pull (16): outputs start at the chunk start of what the layer above reads
  auto c = receptive_rows(100, 199, {4, 4}, {16, 16});
  CHECK(c[1].out0 == 192);
  CHECK(c[1].in0 == 188);
  CHECK(c[0].out0 == 176);
  CHECK(c[0].in0 == 172);
  // a short call: everything from the call start
  auto s = receptive_rows(100, 102, {4, 4}, {});
  CHECK(s[0].in0 == 100);
  CHECK(s[0].out0 == 100);
  CHECK(s[1].out0 == 102);
  // reach 0 (a per-position layer): input rows = output rows
  auto z = receptive_rows(0, 50, {0, 4}, {});
  CHECK(z[1].in0 == 46);
  CHECK(z[0].out0 == 46);
  CHECK(z[0].in0 == 46);
}
