// Trainer: schedule, masked loss, loss goes down on a fixed batch, resume == uninterrupted run.
#include <unistd.h>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "models/torch_compat.hpp"
#include "models/train.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "tests/catch.hpp"

using namespace lctx::models;

namespace {

// A small causal model used only here: embedding, a causal depthwise convolution over 3 tokens, dropout (so
// that the RNG state matters for resume), an MLP and a tied-free output head.
class ToyModel : public Model {
 public:
  explicit ToyModel(int64_t vocab = 32, int64_t d = 16) : vocab_(vocab) {
    emb = register_module("emb", torch::nn::Embedding(vocab, d));
    mix = register_parameter("mix", torch::randn({3, d}) * 0.3);
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    fc1 = register_module("fc1", torch::nn::Linear(d, 4 * d));
    fc2 = register_module("fc2", torch::nn::Linear(4 * d, d));
    out = register_module("out", torch::nn::Linear(d, vocab));
  }
  std::string kind() const override { return "toy"; }
  nlohmann::json config() const override { return {{"kind", "toy"}}; }
  int64_t vocab_size() const override { return vocab_; }
  torch::Tensor head(const torch::Tensor& h) override { return out(h); }
  void set_full_selection(bool on) override { full_selection_log.push_back(on); }
  void set_selection_fraction(double f) override { fraction_log.push_back(f); }
  std::vector<bool> full_selection_log;  // one entry per set_full_selection call
  std::vector<double> fraction_log;      // one entry per set_selection_fraction call
  torch::Tensor forward_hidden(const torch::Tensor& ids) override {
    auto x = emb(ids);                          // [B, T, d]
    auto x1 = torch::constant_pad_nd(x, {0, 0, 1, 0}).narrow(1, 0, x.size(1));
    auto x2 = torch::constant_pad_nd(x, {0, 0, 2, 0}).narrow(1, 0, x.size(1));
    auto h = x * mix[0] + x1 * mix[1] + x2 * mix[2];
    h = h + fc2(torch::gelu(fc1(norm(h))));
    return torch::dropout(h, 0.1, is_training());
  }
  struct St : StreamState {
    std::vector<int64_t> ids;
  };
  std::unique_ptr<StreamState> begin(const StreamOptions&) override { return std::make_unique<St>(); }
  torch::Tensor prefill(StreamState& s, const torch::Tensor& ids) override {
    auto& st = static_cast<St&>(s);
    auto v = ids.to(torch::kInt64).contiguous();
    st.ids.insert(st.ids.end(), v.data_ptr<int64_t>(), v.data_ptr<int64_t>() + v.numel());
    st.position = static_cast<int64_t>(st.ids.size());
    return forward_logits(torch::tensor(st.ids).unsqueeze(0))[0][-1];
  }
  torch::nn::Embedding emb{nullptr};
  torch::Tensor mix;
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, out{nullptr};

 private:
  int64_t vocab_;
};

// A learnable batch source: sequences where token t+1 = (token t * 3 + token t-1) mod V; weight on the second half.
Batch make_batch(int64_t step, int64_t B, int64_t T = 24, int64_t V = 32) {
  uint64_t x = 1000 + static_cast<uint64_t>(step);  // a small LCG (models tests link no tasks/ library)
  auto below = [&x](int64_t n) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int64_t>((x >> 33) % static_cast<uint64_t>(n));
  };
  auto tokens = torch::empty({B, T + 1}, torch::kInt64);
  auto weight = torch::zeros({B, T});
  for (int64_t b = 0; b < B; ++b) {
    int64_t a = below(V), c = below(V);
    tokens[b][0] = a;
    tokens[b][1] = c;
    for (int64_t t = 2; t <= T; ++t) {
      const int64_t n = (c * 3 + a) % V;
      tokens[b][t] = n;
      a = c;
      c = n;
    }
    weight[b].narrow(0, T / 2, T - T / 2).fill_(1.0);
  }
  return {tokens, weight};
}

std::string tmpdir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("lctx_test_train_" + name + "_" + std::to_string(::getpid()));
  lctx::remove_tree(p);
  return p.string();
}

std::vector<torch::Tensor> weights(Model& m) {
  std::vector<torch::Tensor> v;
  for (auto& p : m.parameters()) v.push_back(p.detach().clone());
  return v;
}

}  // namespace

TEST_CASE("train: warmup + cosine schedule", "[train]") {
  TrainOptions o;
  o.lr = 1e-3;
  o.min_lr = 1e-4;
  o.warmup = 10;
  o.steps = 111;  // cosine over steps 10..110
  REQUIRE(std::abs(lr_at(o, 0) - 1e-4) < 1e-12);
  REQUIRE(std::abs(lr_at(o, 9) - 1e-3) < 1e-12);
  REQUIRE(std::abs(lr_at(o, 10) - 1e-3) < 1e-12);
  REQUIRE(std::abs(lr_at(o, 60) - 5.5e-4) < 1e-9);  // half way: midpoint of lr and min_lr
  REQUIRE(std::abs(lr_at(o, 110) - 1e-4) < 1e-12);
  for (int s = 11; s < 111; ++s) REQUIRE(lr_at(o, s) <= lr_at(o, s - 1));
}

TEST_CASE("train: loss is the weight-masked mean of the token NLL", "[train]") {
  torch::manual_seed(3);
  ToyModel m;
  m.eval();
  auto b = make_batch(0, 2);
  auto loss = batch_loss(m, b).item<double>();
  auto logits = m.forward_logits(b.tokens.narrow(1, 0, 24));
  auto lp = torch::log_softmax(logits, -1);
  double num = 0, den = 0;
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t t = 0; t < 24; ++t) {
      double w = b.weight[i][t].item<double>();
      num -= w * lp[i][t][b.tokens[i][t + 1].item<int64_t>()].item<double>();
      den += w;
    }
  REQUIRE(std::abs(loss - num / den) < 1e-4);
  // Changing a token whose prediction has weight 0 (and is never read by a weighted one) keeps the loss.
  auto b2 = b;
  b2.tokens = b.tokens.clone();
  b2.weight = b.weight.clone();
  b2.weight[0][23] = 0;
  b2.tokens[0][24] = (b.tokens[0][24].item<int64_t>() + 1) % 32;
  b.weight[0][23] = 0;
  REQUIRE(std::abs(batch_loss(m, b).item<double>() - batch_loss(m, b2).item<double>()) < 1e-6);
  Batch bad{b.tokens, torch::ones({2, 5})};
  REQUIRE_THROWS_AS(batch_loss(m, bad), lctx::Error);
}

TEST_CASE("train: a few steps reduce the loss on a fixed batch", "[train]") {
  torch::manual_seed(1);
  ToyModel m;
  auto fixed = make_batch(0, 8);
  TrainOptions o;
  o.steps = 60;
  o.lr = 1e-2;
  o.min_lr = 1e-3;
  o.warmup = 5;
  o.quiet = true;
  m.eval();
  const double before = batch_loss(m, fixed).item<double>();
  auto r = train(m, [&](int64_t, int64_t) { return fixed; }, o);
  m.eval();
  const double after = batch_loss(m, fixed).item<double>();
  REQUIRE(r.steps_done == 60);
  REQUIRE(after < 0.5 * before);
  REQUIRE(!m.is_training());  // the previous mode is restored
}

TEST_CASE("train: resume after N steps equals an uninterrupted 2N-step run", "[train]") {
  const int64_t N = 6;
  TrainOptions o;
  o.steps = 2 * N;
  o.batch = 4;
  o.lr = 5e-3;
  o.warmup = 3;
  o.save_every = N;
  o.quiet = true;
  o.save_model = false;  // the trainer state carries the weights; the checkpoint format is tested elsewhere
  auto src = [](int64_t step, int64_t B) { return make_batch(step, B); };

  const auto dirA = tmpdir("A"), dirB = tmpdir("B");
  torch::manual_seed(7);
  ToyModel a;
  o.out_dir = dirA;
  std::vector<double> lossA;
  train(a, src, o, [&](const StepLog& L) { lossA.push_back(L.loss); });

  torch::manual_seed(7);
  ToyModel b;
  o.out_dir = dirB;
  std::vector<double> lossB;
  struct Crash {};
  REQUIRE_THROWS_AS(train(b, src, o,
                          [&](const StepLog& L) {
                            lossB.push_back(L.loss);
                            if (L.step == N) throw Crash{};
                          }),
                    Crash);
  REQUIRE(lossB.size() == static_cast<size_t>(N));
  torch::manual_seed(12345);  // a fresh process: other weights, other RNG state
  ToyModel b2;
  for (int i = 0; i < 5; ++i) torch::rand({7});
  o.resume = true;
  auto r = train(b2, src, o, [&](const StepLog& L) { lossB.push_back(L.loss); });
  REQUIRE(r.steps_done == 2 * N);
  REQUIRE(lossB.size() == lossA.size());
  for (size_t i = 0; i < lossA.size(); ++i) REQUIRE(std::abs(lossA[i] - lossB[i]) < 1e-5);
  auto wa = weights(a), wb = weights(b2);
  for (size_t i = 0; i < wa.size(); ++i) REQUIRE(torch::allclose(wa[i], wb[i], 1e-5, 1e-6));

  // The JSONL log of the resumed run has each step once, in order.
  std::ifstream log(dirB + "/" + kTrainLog);
  std::string line;
  int64_t expect = 1;
  while (std::getline(log, line)) {
    auto j = nlohmann::json::parse(line);
    REQUIRE(j["step"].get<int64_t>() == expect++);
    REQUIRE(j.contains("loss"));
    REQUIRE(j.contains("lr"));
    REQUIRE(j.contains("tokens_per_s"));
    REQUIRE(j.contains("elapsed_s"));
  }
  REQUIRE(expect == 2 * N + 1);
  lctx::remove_tree(dirA);
  lctx::remove_tree(dirB);
}

TEST_CASE("train: a run cut into time-limited segments equals the uninterrupted run", "[train]") {
  // time_limit_s = 1e-9: every segment stops after its first step (a segment always trains >= 1 step), so
  // 10 steps take 10 invocations, each a fresh model resumed from the state file.
  const int64_t S = 10;
  TrainOptions o;
  o.steps = S;
  o.batch = 4;
  o.lr = 5e-3;
  o.warmup = 3;
  o.quiet = true;
  o.save_model = false;
  o.full_selection_steps = 4;
  o.topk_anneal_steps = 4;
  auto src = [](int64_t step, int64_t B) { return make_batch(step, B); };
  const auto dirA = tmpdir("segA"), dirB = tmpdir("segB");
  torch::manual_seed(7);
  ToyModel a;
  o.out_dir = dirA;
  std::vector<double> lossA;
  auto ra = train(a, src, o, [&](const StepLog& L) { lossA.push_back(L.loss); });
  REQUIRE(ra.complete);
  REQUIRE(ra.segments == 1);
  // The warm-up flag: on for steps 0..3, off after, and off when train() returns.
  REQUIRE(a.full_selection_log.size() == static_cast<size_t>(S + 1));
  for (int64_t i = 0; i < S; ++i) REQUIRE(a.full_selection_log[i] == (i < 4));
  REQUIRE(!a.full_selection_log.back());
  // The top-k anneal after it: steps 4..7 select at least 1, 3/4, 1/2, 1/4 of the chunks, then the top-k.
  const std::vector<double> want = {0, 0, 0, 0, 1.0, 0.75, 0.5, 0.25, 0, 0, 0};
  REQUIRE(a.fraction_log == want);

  o.out_dir = dirB;
  o.time_limit_s = 1e-9;
  std::vector<double> lossB;
  torch::manual_seed(7);
  {
    ToyModel b;
    auto r = train(b, src, o, [&](const StepLog& L) { lossB.push_back(L.loss); });
    REQUIRE(!r.complete);
    REQUIRE(r.steps_done == 1);
  }
  o.resume = true;
  TrainResult r;
  std::shared_ptr<ToyModel> last;
  for (int seg = 2; seg <= S; ++seg) {
    torch::manual_seed(1000 + seg);  // a fresh process: other initial weights and RNG state
    last = std::make_shared<ToyModel>();
    r = train(*last, src, o, [&](const StepLog& L) { lossB.push_back(L.loss); });
    REQUIRE(r.steps_done == seg);
    REQUIRE(r.complete == (seg == S));
    REQUIRE(r.segments == seg);
  }
  REQUIRE(r.train_seconds >= r.elapsed_s);
  REQUIRE(lossB.size() == lossA.size());
  for (size_t i = 0; i < lossA.size(); ++i) REQUIRE(lossA[i] == lossB[i]);
  // Same arithmetic in the same order on the CPU: the weights are bit-identical.
  auto wa = weights(a), wb = weights(*last);
  for (size_t i = 0; i < wa.size(); ++i) REQUIRE(torch::equal(wa[i], wb[i]));
  // A resume of a finished run trains nothing and reports complete.
  ToyModel c;
  auto rc = train(c, src, o);
  REQUIRE(rc.complete);
  REQUIRE(rc.steps_done == S);
  lctx::remove_tree(dirA);
  lctx::remove_tree(dirB);
}

TEST_CASE("train: bad options and a missing state are one-line errors", "[train]") {
  ToyModel m;
  auto src = [](int64_t step, int64_t B) { return make_batch(step, B); };
  TrainOptions o;
  o.quiet = true;
  o.steps = 0;
  REQUIRE_THROWS_AS(train(m, src, o), lctx::Error);
  o.steps = 2;
  o.min_lr = 1.0;
  REQUIRE_THROWS_AS(train(m, src, o), lctx::Error);
  o.min_lr = 0;
  o.precision = "fp8";
  REQUIRE_THROWS_AS(train(m, src, o), lctx::Error);
  o.precision = "bf16";  // CPU model: bf16 autocast is CUDA-only
  REQUIRE_THROWS_AS(train(m, src, o), lctx::Error);
  o.precision = "auto";
  o.time_limit_s = -1;
  REQUIRE_THROWS_AS(train(m, src, o), lctx::Error);
  o.time_limit_s = 0;
  o.full_selection_steps = -1;
  REQUIRE_THROWS_AS(train(m, src, o), lctx::Error);
  o.full_selection_steps = 0;
  o.resume = true;
  o.out_dir = tmpdir("missing");
  std::string msg;
  try {
    train(m, src, o);
  } catch (const lctx::Error& e) {
    msg = e.what();
  }
  REQUIRE(msg.find("trainer_state.pt") != std::string::npos);
  REQUIRE(msg.find('\n') == std::string::npos);
  lctx::remove_tree(o.out_dir);
}

TEST_CASE("train: clip_grad_norm and the fused AdamW step equal LibTorch's clip and AdamW", "[train][device]") {
  const char* d = std::getenv("LCTX_TEST_DEVICE");
  const torch::Device dev(d && *d ? d : "cpu");
  torch::manual_seed(11);
  auto make = [&] {
    torch::manual_seed(12);
    auto m = torch::nn::Sequential(torch::nn::Linear(8, 16), torch::nn::Functional(torch::relu), torch::nn::Linear(16, 4));
    m->to(dev);
    return m;
  };
  auto a = make(), b = make();
  auto opts = [](double wd) {
    return torch::optim::AdamWOptions(1e-2).betas(std::make_tuple(0.9, 0.95)).eps(1e-8).weight_decay(wd);
  };
  auto groups = [&](torch::nn::Sequential& m) {
    std::vector<torch::Tensor> mat, vec;
    for (auto& p : m->parameters()) (p.dim() >= 2 ? mat : vec).push_back(p);
    std::vector<torch::optim::OptimizerParamGroup> g;
    g.emplace_back(mat, std::make_unique<torch::optim::AdamWOptions>(opts(0.1)));
    g.emplace_back(vec, std::make_unique<torch::optim::AdamWOptions>(opts(0.0)));
    return g;
  };
  torch::optim::AdamW oa(groups(a), opts(0.1)), ob(groups(b), opts(0.1));
  bool fused_ran = false;
  for (int step = 0; step < 6; ++step) {
    auto x = torch::randn({32, 8}).to(dev) * 3.0;
    for (auto* m : {&a, &b}) {
      auto y = (*m)->forward(x);
      (y.pow(2).sum() * 10.0).backward();  // large gradients: the clip is active
    }
    const double na = torch::nn::utils::clip_grad_norm_(a->parameters(), 1.0);
    const double nb = clip_grad_norm(b->parameters(), 1.0).item<double>();
    CHECK(std::abs(na - nb) <= 1e-4 * std::max(1.0, na));
    oa.step();
    fused_ran = adamw_step_fused(ob) || fused_ran;
    if (!fused_ran) ob.step();
    oa.zero_grad();
    ob.zero_grad();
  }
  auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) CHECK((pa[i] - pb[i]).abs().max().item<double>() < 1e-5);
  // On CUDA with LibTorch >= 2.1 the fused kernel must have been the one that ran.
  if (dev.is_cuda() && LCTX_TORCH_AT_LEAST(2, 1)) CHECK(fused_ran);
  // The same state drives a later optim.step() (and thus save/load): one more step on each stays equal.
  for (auto* m : {&a, &b}) ((*m)->forward(torch::ones({4, 8}).to(dev))).sum().backward();
  oa.step();
  if (!adamw_step_fused(ob)) ob.step();
  for (size_t i = 0; i < pa.size(); ++i) CHECK((pa[i] - pb[i]).abs().max().item<double>() < 1e-5);
}
