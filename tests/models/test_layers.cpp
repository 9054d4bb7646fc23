// Unit tests of the shared layers: RMSNorm, RoPE, sliding-window attention (full vs blockwise vs streamed),
// transformer block streaming, config reader.
#include <cmath>

#include "kernels/kernels.hpp"
#include "models/layers.hpp"
#include "core/error.hpp"
#include "tests/catch.hpp"

using namespace lctx::models;

static double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
}

TEST_CASE("rmsnorm normalises the last dimension", "[layers]") {
  torch::manual_seed(1);
  RMSNorm n(16);
  auto x = torch::randn({3, 5, 16}) * 7.0;
  auto y = n(x);
  auto rms = y.pow(2).mean(-1).sqrt();
  REQUIRE(max_diff(rms, torch::ones_like(rms)) < 1e-4);
}

TEST_CASE("rope preserves norms and depends only on relative position in dot products", "[layers]") {
  torch::manual_seed(2);
  Rope rope(32, 10000.0);
  auto q = torch::randn({1, 1, 1, 32}), k = torch::randn({1, 1, 1, 32});
  auto dot = [&](int64_t pq, int64_t pk) {
    auto qr = Rope::apply(q, rope.tables(pq, 1, torch::kCPU));
    auto kr = Rope::apply(k, rope.tables(pk, 1, torch::kCPU));
    return (qr * kr).sum().item<double>();
  };
  REQUIRE(std::abs(dot(10, 3) - dot(1000007, 1000000)) < 1e-3);
  REQUIRE(std::abs(dot(10, 3) - dot(10, 4)) > 1e-4);
  auto xr = Rope::apply(q, rope.tables(33554431, 1, torch::kCPU));
  REQUIRE(std::abs(xr.norm().item<double>() - q.norm().item<double>()) < 1e-4);
  // tables for a range equal tables for explicit positions
  auto a = rope.tables(5, 4, torch::kCPU);
  auto b = rope.tables(torch::arange(5, 9, torch::kLong));
  REQUIRE(max_diff(a.cos, b.cos) == 0.0);
  REQUIRE_THROWS_AS(Rope(7, 10000.0), lctx::Error);
}

TEST_CASE("window attention: blockwise equals dense masked attention", "[layers][kernels]") {
  torch::manual_seed(3);
  for (int64_t window : {1, 5, 64, 300}) {
    auto q = torch::randn({2, 3, 700, 16}), k = torch::randn({2, 3, 700, 16}), v = torch::randn({2, 3, 700, 16});
    auto dense = lctx::kernels::window_attention_dense(q, k, v, window, 0, 0);
    auto blocked = lctx::kernels::window_attention_reference(q, k, v, window, 0, 0, 0.0, 128);
    auto dflt = lctx::kernels::window_attention(q, k, v, window, 0, 0);
    CHECK(max_diff(dense, blocked) < 1e-5);
    CHECK(max_diff(dense, dflt) < 1e-5);
  }
  // window 1: each query sees only itself -> output = v
  auto q = torch::randn({1, 1, 9, 8}), k = torch::randn({1, 1, 9, 8}), v = torch::randn({1, 1, 9, 8});
  REQUIRE(max_diff(lctx::kernels::window_attention(q, k, v, 1, 0, 0), v) < 1e-6);
  // offsets: queries at 100.. against keys from 95..
  auto k2 = torch::randn({1, 1, 14, 8}), v2 = torch::randn({1, 1, 14, 8});
  auto full = lctx::kernels::window_attention_dense(q, k2, v2, 4, 100, 95);
  auto ref = lctx::kernels::window_attention_reference(q, k2, v2, 4, 100, 95, 0.0, 2);
  REQUIRE(max_diff(full, ref) < 1e-6);
  REQUIRE_THROWS(lctx::kernels::window_attention(q, k2, v2, 4, 90, 95));
}

TEST_CASE("window attention: the output ignores keys outside the window", "[layers]") {
  torch::manual_seed(4);
  WindowAttention attn(32, 4, 8, 10000.0);
  auto x = torch::randn({1, 40, 32});
  auto y1 = attn->forward(x, 0);
  auto x2 = x.clone();
  x2.slice(1, 0, 20).normal_();  // change tokens 0..19: outputs from position 27 on must not move
  auto y2 = attn->forward(x2, 0);
  REQUIRE(max_diff(y1.slice(1, 27), y2.slice(1, 27)) < 1e-6);
  REQUIRE(max_diff(y1.slice(1, 20, 27), y2.slice(1, 20, 27)) > 1e-4);
}

TEST_CASE("transformer block: streamed blocks equal the full forward", "[layers]") {
  torch::manual_seed(5);
  TransformerBlock blk(64, 4, 16, 0, 10000.0);
  torch::NoGradGuard ng;
  auto x = torch::randn({1, 100, 64});
  const auto& rope = blk->attn->rope;
  auto full = blk->forward(x, 0, rope.tables(0, 100, torch::kCPU));
  for (int64_t bs : {1, 7, 16, 64, 100}) {
    KVCache cache;
    std::vector<torch::Tensor> outs;
    for (int64_t p = 0; p < 100; p += bs) {
      const int64_t n = std::min<int64_t>(bs, 100 - p);
      outs.push_back(blk->forward_stream(x.slice(1, p, p + n), p, rope.tables(p, n, torch::kCPU), cache));
      REQUIRE(cache.k.size(2) == std::min<int64_t>(p + n, 15));
    }
    CHECK(max_diff(torch::cat(outs, 1), full) < 1e-5);
  }
}

TEST_CASE("config reader: types, ranges and unknown keys", "[layers]") {
  nlohmann::json j = {{"a", 3}, {"b", 0.5}, {"c", true}, {"d", "x"}, {"zz", 1}};
  ConfigReader r(j, "test config");
  REQUIRE(r.get_int("a", 1) == 3);
  REQUIRE(r.get_double("b", 1.0) == 0.5);
  REQUIRE(r.get_bool("c", false));
  REQUIRE(r.get_string("d", "", {"x", "y"}) == "x");
  REQUIRE(r.get_int("missing", 42) == 42);
  REQUIRE_THROWS_WITH(r.finish(), "test config: unknown key 'zz'");
  ConfigReader r2(j, "t");
  REQUIRE_THROWS_AS(r2.get_int("b", 1), lctx::Error);
  REQUIRE_THROWS_AS(r2.get_int("a", 1, 4), lctx::Error);
  REQUIRE_THROWS_AS(r2.get_string("d", "", {"y"}), lctx::Error);
  REQUIRE_THROWS_AS(r2.get_bool("a", true), lctx::Error);
}
