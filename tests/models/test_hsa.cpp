// HSA model and chunk-attention kernel tests (CPU): streamed == full forward for every switch, causality,
// selection validity, enforced training sparsity, kv_offload, gradients into the landmarks, config errors.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "kernels/chunk_attention.hpp"
#include "models/hsa.hpp"
#include "tasks/core.hpp"
#include "tests/catch.hpp"
#include "tests/models/model_test.hpp"

using lctx::models::HsaConfig;
using lctx::models::HsaModel;

namespace {

// Small but complete: 2 lower + 2 upper layers, S = 16, window 24, top-3 (so selection is a real choice).
HsaConfig small_cfg() {
  HsaConfig c;
  c.vocab = 97;
  c.d_model = 32;
  c.n_heads = 2;
  c.lower_layers = 2;
  c.upper_layers = 2;
  c.window = 24;
  c.chunk = 16;
  c.topk = 3;
  c.encoder_layers = 2;
  return c;
}

std::shared_ptr<HsaModel> make(const HsaConfig& c, uint64_t seed = 7) {
  torch::manual_seed(seed);
  auto m = std::make_shared<HsaModel>(c);
  // Unit-gain weights instead of the small training init, so logits are O(1) and the retrieval path moves
  // them a lot (a wrong chunk or weight shows far above the tolerances below).
  {
    torch::NoGradGuard ng;
    for (auto& p : m->named_parameters())
      if (p.value().dim() == 2) p.value().normal_(0.0, 1.0 / std::sqrt(double(p.value().size(1))));
  }
  m->eval();
  return m;
}

torch::Tensor random_ids(int64_t t, int64_t vocab, uint64_t seed) {
  auto g = torch::make_generator<torch::CPUGeneratorImpl>(seed);
  return torch::randint(vocab, {t}, g, torch::kInt64);
}

// Max |streamed - full| over the last logits of every block when pushing `ids` in blocks of `blk`.
double stream_diff(HsaModel& m, const torch::Tensor& ids, int64_t blk, const torch::Tensor& full,
                   lctx::models::StreamOptions opt = {}) {
  auto st = m.begin(opt);
  double worst = 0;
  const int64_t t = ids.size(0);
  for (int64_t t0 = 0; t0 < t; t0 += blk) {
    const int64_t t1 = std::min(t, t0 + blk);
    auto last = m.prefill(*st, ids.slice(0, t0, t1));
    worst = std::max(worst, (last - full[0][t1 - 1]).abs().max().item<double>());
  }
  REQUIRE(st->position == t);
  return worst;
}

// Naive per-row loop version of chunk attention.
torch::Tensor naive_chunk_attention(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& w,
                                    const torch::Tensor& k, const torch::Tensor& v, double scale) {
  auto out = torch::zeros_like(q);
  for (int64_t h = 0; h < q.size(0); ++h)
    for (int64_t t = 0; t < q.size(1); ++t)
      for (int64_t j = 0; j < idx.size(1); ++j) {
        const int64_t c = idx[t][j].item<int64_t>();
        if (c < 0) continue;
        auto p = torch::softmax(torch::matmul(k[c][h], q[h][t]) * scale, 0);  // [S]
        out[h][t] += w[t][j] * torch::matmul(p, v[c][h]);
      }
  return out;
}

// Naive joint fusion: one softmax over the tokens of all selected chunks, logits shifted by the chunk bias.
torch::Tensor naive_chunk_attention_joint(const torch::Tensor& q, const torch::Tensor& idx, const torch::Tensor& bias,
                                          const torch::Tensor& k, const torch::Tensor& v, double scale) {
  auto out = torch::zeros_like(q);
  for (int64_t h = 0; h < q.size(0); ++h)
    for (int64_t t = 0; t < q.size(1); ++t) {
      std::vector<torch::Tensor> logits, vals;
      for (int64_t j = 0; j < idx.size(1); ++j) {
        const int64_t c = idx[t][j].item<int64_t>();
        if (c < 0) continue;
        logits.push_back(torch::matmul(k[c][h], q[h][t]) * scale + bias[t][j]);
        vals.push_back(v[c][h]);
      }
      if (logits.empty()) continue;
      out[h][t] = torch::matmul(torch::softmax(torch::cat(logits), 0), torch::cat(vals));
    }
  return out;
}

}  // namespace

TEST_CASE("chunk_attention_joint equals one softmax over the selected chunks' tokens", "[hsa][kernels]") {
  torch::manual_seed(5);
  const int64_t h = 2, tq = 5, d = 8, n = 6, s = 4, kk = 3;
  auto q = torch::randn({h, tq, d}), k = torch::randn({n, h, s, d}), v = torch::randn({n, h, s, d});
  auto idx = torch::tensor({0, 5, -1, 2, 3, 1, -1, -1, -1, 4, 3, 0, 1, -1, 5}, torch::kInt64).view({tq, kk});
  auto bias = torch::randn({tq, kk}) * 2;
  auto ref = lctx::kernels::chunk_attention_joint(q, idx, bias, k, v, 0.35);   // dense path (n <= 4k)
  REQUIRE((ref - naive_chunk_attention_joint(q, idx, bias, k, v, 0.35)).abs().max().item<double>() < 1e-5);
  REQUIRE(ref.select(1, 2).abs().max().item<double>() == 0.0);  // row 2: all slots empty
  // Many distinct chunks: the gathered path.
  const int64_t n2 = 64, tq2 = 16, k2 = 2;
  auto k_2 = torch::randn({n2, h, s, d}), v_2 = torch::randn({n2, h, s, d}), q2 = torch::randn({h, tq2, d});
  auto idx2 = torch::randint(-1, n2, {tq2, k2}, torch::kInt64);
  auto b2 = torch::randn({tq2, k2});
  auto ref2 = lctx::kernels::chunk_attention_joint(q2, idx2, b2, k_2, v_2, 0.2);
  REQUIRE((ref2 - naive_chunk_attention_joint(q2, idx2, b2, k_2, v_2, 0.2)).abs().max().item<double>() < 1e-5);
}

TEST_CASE("chunk_attention reference equals the per-row loop, empty slots contribute nothing", "[hsa][kernels]") {
  torch::manual_seed(3);
  const int64_t h = 2, tq = 5, d = 8, n = 6, s = 4, kk = 3;
  auto q = torch::randn({h, tq, d}), k = torch::randn({n, h, s, d}), v = torch::randn({n, h, s, d});
  auto idx = torch::tensor({0, 5, -1, 2, 2, 1, -1, -1, -1, 4, 3, 0, 1, -1, 5}, torch::kInt64).view({tq, kk});
  auto w = torch::rand({tq, kk});
  auto ref = lctx::kernels::chunk_attention_reference(q, idx, w, k, v, 0.35);
  auto naive = naive_chunk_attention(q, idx, w, k, v, 0.35);
  REQUIRE((ref - naive).abs().max().item<double>() < 1e-5);
  REQUIRE(ref.select(1, 2).abs().max().item<double>() == 0.0);  // row 2: all slots empty
  auto disp = lctx::kernels::chunk_attention(q, idx, w, k, v, 0.35);
  REQUIRE((disp - naive).abs().max().item<double>() < 1e-5);
  // Many distinct chunks (the gathered path of the reference), some empty slots.
  const int64_t n2 = 64, tq2 = 16, k2 = 2;
  auto k_2 = torch::randn({n2, h, s, d}), v_2 = torch::randn({n2, h, s, d}), q2 = torch::randn({h, tq2, d});
  auto idx2 = torch::randint(-1, n2, {tq2, k2}, torch::kInt64);
  auto w2 = torch::rand({tq2, k2});
  auto ref2 = lctx::kernels::chunk_attention_reference(q2, idx2, w2, k_2, v_2, 0.2);
  REQUIRE((ref2 - naive_chunk_attention(q2, idx2, w2, k_2, v_2, 0.2)).abs().max().item<double>() < 1e-5);
}

TEST_CASE("topk_visible and select_chunks only choose visible chunks", "[hsa][kernels]") {
  torch::manual_seed(4);
  const int64_t tq = 9, n = 7, dl = 5;
  auto q = torch::randn({tq, dl}), lmk = torch::randn({n, dl});
  auto vis = torch::tensor({0, 1, 2, 3, 4, 5, 6, 7, 7}, torch::kInt64);
  auto a = lctx::kernels::select_chunks(q, lmk, vis, 3, 0.5);
  auto b = lctx::kernels::select_chunks(q, lmk, vis, 3, 0.5, /*max_elems=*/n * 2);  // blocked path
  REQUIRE(torch::equal(a.idx, b.idx));
  REQUIRE(a.idx.size(1) == 3);
  auto full = torch::matmul(q, lmk.t()) * 0.5;
  for (int64_t t = 0; t < tq; ++t) {
    const int64_t v = vis[t].item<int64_t>();
    int64_t count = 0;
    std::set<int64_t> seen;
    for (int64_t j = 0; j < 3; ++j) {
      const int64_t c = a.idx[t][j].item<int64_t>();
      if (c < 0) {
        REQUIRE(std::isinf(a.scores[t][j].item<double>()));
        continue;
      }
      REQUIRE(c < v);
      REQUIRE(seen.insert(c).second);
      REQUIRE(std::abs(a.scores[t][j].item<double>() - full[t][c].item<double>()) < 1e-6);
      ++count;
    }
    REQUIRE(count == std::min<int64_t>(3, v));
    // the chosen are the best visible: every unchosen visible chunk scores no higher than the worst chosen
    if (count > 0) {
      double worst = a.scores[t][count - 1].item<double>();
      for (int64_t c = 0; c < v; ++c)
        if (!seen.count(c)) REQUIRE(full[t][c].item<double>() <= worst + 1e-7);
    }
  }
}

TEST_CASE("hsa streamed prefill equals forward_logits for every switch and block size", "[hsa]") {
  struct Variant {
    const char* enc;
    const char* res;
    const char* gran;
    const char* fusion;
    bool shift = false;
    const char* lower = "swa";
    int64_t shift_width = 1;
    bool key_shift = false;
  };
  const Variant variants[] = {{"encoder+cls", "bypass", "token", "chunk"},
                              {"encoder+cls", "standard", "token", "chunk"},
                              {"encoder", "bypass", "token", "chunk"},
                              {"mean-pool", "standard", "token", "chunk"},
                              {"encoder+cls", "bypass", "chunk", "chunk"},
                              {"encoder+cls", "bypass", "token", "joint"},
                              {"encoder+cls", "bypass", "chunk", "joint"},
                              {"encoder+cls", "standard", "token", "joint", true},
                              {"encoder+cls", "standard", "token", "joint", true, "swa", 3},
                              {"encoder+cls", "standard", "token", "joint", true, "swa", 1, true},
                              {"encoder", "bypass", "chunk", "chunk", false, "swa", 1, true},
                              {"encoder+cls", "bypass", "token", "chunk", false, "mamba"}};
  const int64_t t = 150;  // 9 complete chunks + a partial one
  for (const auto& var : variants) {
    auto c = small_cfg();
    c.chunk_encoder = var.enc;
    c.residual = var.res;
    c.granularity = var.gran;
    c.fusion = var.fusion;
    c.token_shift = var.shift;
    c.token_shift_width = var.shift_width;
    c.key_shift = var.key_shift;
    c.lower = var.lower;
    auto m = make(c);
    m->to(lctx_test::test_device());
    auto ids = random_ids(t, c.vocab, 11).to(lctx_test::test_device());
    torch::Tensor full;
    {
      torch::NoGradGuard ng;
      full = m->forward_logits(ids.unsqueeze(0));
    }
    REQUIRE(full.sizes() == torch::IntArrayRef({1, t, c.vocab}));
    for (int64_t blk : {int64_t(1), int64_t(13), int64_t(64), t}) {
      const double diff = stream_diff(*m, ids, blk, full);
      INFO(var.enc << " " << var.res << " " << var.gran << " " << var.fusion << " shift " << var.shift << " lower " << var.lower << " block " << blk << " diff " << diff);
      if (std::getenv("LCTX_TEST_VERBOSE"))
        std::printf("stream-vs-full %s %s %s %s block %lld: max |dlogit| %.3g\n", var.enc, var.res, var.gran,
                    var.fusion, (long long)blk, diff);
      CHECK(diff < lctx_test::device_tol(1e-4));
    }
  }
}

TEST_CASE("hsa retrieval changes the logits (top-k and residual form matter)", "[hsa]") {
  auto c = small_cfg();
  auto ids = random_ids(150, c.vocab, 11).unsqueeze(0);
  torch::NoGradGuard ng;
  auto base = make(c)->forward_logits(ids);
  c.topk = 1;
  auto k1 = make(c)->forward_logits(ids);
  c.topk = 3;
  c.residual = "standard";
  auto std_res = make(c)->forward_logits(ids);
  // positions of chunk 0 see no memory: identical; later positions move
  REQUIRE((base.slice(1, 0, 16) - k1.slice(1, 0, 16)).abs().max().item<double>() < 1e-6);
  REQUIRE((base.slice(1, 32) - k1.slice(1, 32)).abs().max().item<double>() > 0.1);
  REQUIRE((base.slice(1, 16) - std_res.slice(1, 16)).abs().max().item<double>() > 0.1);
}

TEST_CASE("hsa kv_offload gives the same logits; memory stats separate landmarks from K/V", "[hsa]") {
  auto c = small_cfg();
  auto m = make(c);
  m->to(lctx_test::test_device());
  auto ids = random_ids(140, c.vocab, 5).to(lctx_test::test_device());
  torch::Tensor full;
  {
    torch::NoGradGuard ng;
    full = m->forward_logits(ids.unsqueeze(0));
  }
  lctx::models::StreamOptions off;
  off.kv_offload = true;
  REQUIRE(stream_diff(*m, ids, 17, full, off) < lctx_test::device_tol(1e-4));
  auto a = m->begin(), b = m->begin(off);
  auto la = m->prefill(*a, ids), lb = m->prefill(*b, ids);
  REQUIRE((la - lb).abs().max().item<double>() == 0.0);
  auto sa = m->memory_stats(*a), sb = m->memory_stats(*b);
  REQUIRE(sa.chunks == 140 / 16);
  REQUIRE(sb.chunks == sa.chunks);
  REQUIRE(sa.kv_host_bytes == 0);
  REQUIRE(sa.kv_device_bytes > 0);
  REQUIRE(sb.kv_device_bytes == 0);
  REQUIRE(sb.kv_host_bytes == sa.kv_device_bytes);
  REQUIRE(sb.landmark_bytes == sa.landmark_bytes);
  REQUIRE(sb.landmark_bytes > 0);
}

TEST_CASE("hsa is causal: changing token j never changes outputs before j", "[hsa]") {
  for (int variant : {0, 1, 2}) {
    auto c = small_cfg();
    if (variant == 1) {  // joint fusion, standard residual, token shift over 2 previous tokens, shifted keys
      c.fusion = "joint";
      c.residual = "standard";
      c.token_shift = true;
      c.token_shift_width = 2;
      c.key_shift = true;
    }
    if (variant == 2) c.lower = "mamba";  // RAMba
    auto m = make(c);
    auto ids = random_ids(120, c.vocab, 21);
    for (bool training : {false, true}) {
      training ? m->train() : m->eval();
      for (int64_t j : {int64_t(5), int64_t(47), int64_t(64), int64_t(100)}) {
        auto ids2 = ids.clone();
        ids2[j] = (ids[j].item<int64_t>() + 1) % c.vocab;
        torch::NoGradGuard ng;
        torch::manual_seed(99);
        auto a = m->forward_logits(ids.unsqueeze(0));
        torch::manual_seed(99);
        auto b = m->forward_logits(ids2.unsqueeze(0));
        INFO("variant " << variant << " training " << training << " j " << j);
        REQUIRE((a.slice(1, 0, j) - b.slice(1, 0, j)).abs().max().item<double>() < 1e-6);
        REQUIRE((a.slice(1, j) - b.slice(1, j)).abs().max().item<double>() > 1e-4);
      }
    }
  }
}

TEST_CASE("hsa selects only complete, strictly earlier chunks (full and streamed)", "[hsa]") {
  for (const char* gran : {"token", "chunk"}) {
    auto c = small_cfg();
    c.granularity = gran;
    auto m = make(c);
    auto ids = random_ids(130, c.vocab, 8);
    HsaModel::SelectionTrace trace;
    m->set_trace(&trace);
    {
      torch::NoGradGuard ng;
      m->forward_logits(ids.unsqueeze(0));
    }
    auto st = m->begin();
    for (int64_t t0 = 0; t0 < 130; t0 += 7) m->prefill(*st, ids.slice(0, t0, std::min<int64_t>(130, t0 + 7)));
    m->set_trace(nullptr);
    REQUIRE(trace.idx.size() == size_t(c.upper_layers) * (1 + 19));
    int64_t checked = 0;
    for (size_t r = 0; r < trace.idx.size(); ++r) {
      auto idx = trace.idx[r].dim() == 3 ? trace.idx[r][0] : trace.idx[r];
      auto pos = trace.positions[r];
      for (int64_t i = 0; i < idx.size(0); ++i) {
        const int64_t p = pos[i].item<int64_t>(), own = p / c.chunk;
        std::set<int64_t> seen;
        for (int64_t j = 0; j < idx.size(1); ++j) {
          const int64_t ch = idx[i][j].item<int64_t>();
          if (ch < 0) continue;
          INFO(gran << " position " << p << " chose chunk " << ch);
          REQUIRE(ch < own);
          REQUIRE(seen.insert(ch).second);
          ++checked;
        }
        REQUIRE(int64_t(seen.size()) == std::min<int64_t>(c.topk, own));
      }
    }
    REQUIRE(checked > 100);
  }
}

TEST_CASE("hsa enforced sparsity: training top-k is n_chunks/ratio with Gumbel noise; off keeps k", "[hsa]") {
  auto c = small_cfg();
  c.topk = 8;
  c.sparsity_ratio = 8;  // 320 tokens / 16 = 20 chunks -> training k = max(1, 20 / 8) = 2
  auto ids = random_ids(320, c.vocab, 2);
  auto count_max = [&](HsaModel& m, bool training) {
    training ? m.train() : m.eval();
    HsaModel::SelectionTrace trace;
    m.set_trace(&trace);
    torch::NoGradGuard ng;
    m.forward_logits(ids.unsqueeze(0));
    m.set_trace(nullptr);
    return trace.idx[0].ge(0).sum(-1).max().item<int64_t>();
  };
  auto m = make(c);
  REQUIRE(count_max(*m, true) == 2);
  REQUIRE(count_max(*m, false) == 8);
  // Gumbel noise: two training passes with different seeds select differently.
  m->train();
  HsaModel::SelectionTrace t1, t2;
  {
    torch::NoGradGuard ng;
    m->set_trace(&t1);
    torch::manual_seed(1);
    m->forward_logits(ids.unsqueeze(0));
    m->set_trace(&t2);
    torch::manual_seed(2);
    m->forward_logits(ids.unsqueeze(0));
    m->set_trace(nullptr);
  }
  REQUIRE_FALSE(torch::equal(t1.idx[0], t2.idx[0]));
  c.selection_sparsity = "off";
  auto m2 = make(c);
  REQUIRE(count_max(*m2, true) == 8);
}

TEST_CASE("hsa training gradients reach the landmarks and the landmark query", "[hsa]") {
  for (const char* enc : {"encoder+cls", "encoder", "mean-pool"}) {
    auto c = small_cfg();
    c.chunk_encoder = enc;
    auto m = make(c);
    m->train();
    auto ids = random_ids(160, c.vocab, 3).unsqueeze(0);
    auto logits = m->forward_logits(ids);
    auto loss = torch::nn::functional::cross_entropy(logits.slice(1, 0, 159).reshape({-1, c.vocab}),
                                                     ids.slice(1, 1).reshape({-1}));
    loss.backward();
    auto params = m->named_parameters();
    INFO(enc);
    REQUIRE(params["encoder.lmk.weight"].grad().abs().sum().item<double>() > 0);
    REQUIRE(params["upper.0.ret.qlmk.weight"].grad().abs().sum().item<double>() > 0);
    REQUIRE(params["upper.1.ret.k.weight"].grad().abs().sum().item<double>() > 0);
    if (std::string(enc) == "encoder+cls") REQUIRE(params["encoder.cls"].grad().abs().sum().item<double>() > 0);
  }
}

TEST_CASE("hsa config: presets, round trip and one-line errors", "[hsa]") {
  auto tiny = HsaConfig::from_json({{"kind", "hsa"}, {"preset", "tiny"}});
  REQUIRE(tiny.d_model == 128);
  REQUIRE(tiny.chunk == 64);
  auto back = HsaConfig::from_json(tiny.to_json());
  REQUIRE(back.to_json() == tiny.to_json());
  REQUIRE_THROWS_WITH(HsaConfig::from_json({{"kind", "hsa"}, {"bogus", 1}}), "hsa config: unknown key 'bogus'");
  REQUIRE_THROWS_WITH(HsaConfig::from_json({{"residual", "skip"}}),
                      "hsa config: 'residual' must be one of bypass, standard, got 'skip'");
  REQUIRE_THROWS_AS(HsaConfig::from_json({{"chunk", 1}}), lctx::Error);
  REQUIRE_THROWS_AS(HsaConfig::from_json({{"preset", "huge"}}), lctx::Error);
  auto ramba = HsaConfig::from_json({{"preset", "tiny"}, {"lower", "mamba"}, {"fusion", "joint"}, {"token_shift", true}});
  REQUIRE(ramba.lower == "mamba");
  REQUIRE(HsaConfig::from_json(ramba.to_json()).to_json() == ramba.to_json());
  REQUIRE_THROWS_WITH(HsaConfig::from_json({{"lower", "lstm"}}),
                      "hsa config: 'lower' must be one of mamba, swa, got 'lstm'");
  REQUIRE_THROWS_AS(HsaConfig::from_json({{"fusion", "sum"}}), lctx::Error);
}

TEST_CASE("hsa selection_aux: a detached token-attention target trains the selection only", "[hsa]") {
  auto c = small_cfg();
  c.selection_aux = 0.5;
  auto m = make(c);
  auto ids = random_ids(150, c.vocab, 31).unsqueeze(0);
  m->eval();
  m->forward_hidden(ids);
  REQUIRE_FALSE(m->auxiliary_loss().defined());  // training only
  m->train();
  m->forward_hidden(ids);
  auto aux = m->auxiliary_loss();
  REQUIRE(aux.defined());
  const double v = aux.item<double>();
  REQUIRE(std::isfinite(v));
  REQUIRE(v > 0);  // a KL divergence; random landmarks do not match the attention mass
  // The weight scales it linearly; the value does not depend on the Gumbel-noised selection.
  auto c2 = c;
  c2.selection_aux = 1.0;
  auto m2 = make(c2);
  m2->train();
  m2->forward_hidden(ids);
  REQUIRE(std::abs(m2->auxiliary_loss().item<double>() - 2 * v) <= 1e-5 * v);
  // Gradients reach the landmark queries and the landmarks (encoder), never the token attention it imitates:
  // the last upper layer's token attention feeds no later selection, so its projections get none at all.
  m->zero_grad();
  aux.backward();
  int lmk_grads = 0;
  for (auto& p : m->named_parameters(true)) {
    const auto& name = p.key();
    const auto& g = p.value().grad();
    const double norm = g.defined() ? g.abs().sum().item<double>() : 0.0;
    if (name.find("ret.qlmk") != std::string::npos || name.find("encoder.lmk") != std::string::npos) {
      INFO(name);
      REQUIRE(norm > 0);
      ++lmk_grads;
    }
    for (const char* frozen : {"upper.1.ret.q.", "upper.1.ret.k.", "upper.1.ret.v.", "upper.1.ret.wo."})
      if (name.find(frozen) != std::string::npos) {
        INFO(name);
        REQUIRE(norm == 0);
      }
  }
  REQUIRE(lmk_grads == 3);  // two upper layers' landmark queries + the encoder's landmark map
  // Chunk granularity has no per-token selection to supervise.
  auto bad = nlohmann::json{{"kind", "hsa"}, {"granularity", "chunk"}, {"selection_aux", 0.5}};
  REQUIRE_THROWS_WITH(HsaConfig::from_json(bad), lctx_test::Contains("selection_aux"));
}
