// Training data mixture: parsing, determinism, tagged (training-only) seeds, answer-only loss weights, and
// `lctx train` / `lctx train-eval` input errors.
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>

#include "harness/run.hpp"
#include "harness/train_data.hpp"
#include "models/model.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "tests/catch.hpp"

using namespace lctx;
using namespace lctx::harness;

namespace {

const Resources& resources() {
  static Resources r = load_resources("", "");
  return r;
}


}  // namespace

TEST_CASE("train data: mixture strings", "[train_data]") {
  auto m = parse_mix("corpus:0.3, niah:0.5,babi:0.2");
  REQUIRE(m.size() == 3);
  REQUIRE(m[0].name == "corpus");
  REQUIRE(m[1].suite == "ruler");
  REQUIRE(m[1].tasks.size() == 3);
  REQUIRE(m[2].suite == "babilong");
  REQUIRE(m[2].tasks == std::vector<std::string>{"qa1", "qa2", "qa3", "qa4", "qa5"});
  REQUIRE(std::abs(m[0].weight + m[1].weight + m[2].weight - 1.0) < 1e-12);
  auto m2 = parse_mix("niah1:3,ruler/vt:1");
  REQUIRE(std::abs(m2[0].weight - 0.75) < 1e-12);
  REQUIRE(m2[1].tasks == std::vector<std::string>{"vt"});
  REQUIRE(parse_mix("corpus")[0].weight == 1.0);
  REQUIRE_THROWS_AS(parse_mix(""), Error);
  REQUIRE_THROWS_AS(parse_mix("wiki:1"), Error);
  REQUIRE_THROWS_AS(parse_mix("corpus:abc"), Error);
  REQUIRE_THROWS_AS(parse_mix("corpus:0.5x"), Error);
  REQUIRE_THROWS_AS(parse_mix("corpus:-1"), Error);
  REQUIRE_THROWS_AS(parse_mix("corpus:0,niah:0"), Error);
  REQUIRE_THROWS_AS(parse_mix("corpus:1,corpus:2"), Error);
  REQUIRE_THROWS_AS(parse_mix("ruler/nosuchtask:1"), Error);
}

TEST_CASE("train data: seeds are tagged and disjoint from evaluation seeds", "[train_data]") {
  REQUIRE(is_training_seed(training_run_seed(0)));
  REQUIRE(is_training_seed(training_run_seed(42)));
  REQUIRE(!is_training_seed(42));
  REQUIRE(!is_training_seed(0xffffffffULL));
  REQUIRE(training_run_seed(42) != 42);
}

TEST_CASE("train data: rows are deterministic, answer-weighted, and not evaluation samples", "[train_data]") {
  TrainDataOptions o;
  o.mix = "corpus:0.3,niah1:0.5,babi:0.2";
  o.context = 512;
  o.seed = 5;
  TrainData d(o, resources());
  TrainData d2(o, resources());
  std::set<std::string> sources;
  int task_rows = 0;
  for (int64_t step = 0; step < 4; ++step)
    for (int64_t r = 0; r < 6; ++r) {
      auto a = d.row(step, r);
      auto b = d2.row(step, r);
      REQUIRE(a.tokens == b.tokens);
      REQUIRE(a.weight == b.weight);
      REQUIRE(a.source == b.source);
      REQUIRE(a.tokens.size() == 513);
      REQUIRE(a.weight.size() == 512);
      sources.insert(a.source);
      if (a.source == "corpus") {
        for (float w : a.weight) REQUIRE(w == 1.0f);
        continue;
      }
      ++task_rows;
      // Weighted positions: exactly the answer tokens plus EOS (prompt weight 0), the last one predicts EOS.
      int64_t nw = 0, last = -1;
      for (int64_t i = 0; i < 512; ++i)
        if (a.weight[i] > 0) {
          ++nw;
          last = i;
        }
      REQUIRE(nw == a.answer_tokens);
      REQUIRE(nw >= 2);
      if (!a.truncated) REQUIRE(a.tokens[last + 1] == resources().tokenizer->eos_id());
    }
  REQUIRE(sources.count("corpus") == 1);
  REQUIRE(sources.count("ruler/niah_single_1") == 1);
  REQUIRE(task_rows > 0);

  // Another seed gives other rows; the same (step,row) twice is the same row; a batch stacks rows.
  o.seed = 6;
  TrainData d3(o, resources());
  REQUIRE(d3.row(0, 0).tokens != d.row(0, 0).tokens);
  auto batch = d.batch(2, 3);
  REQUIRE(batch.tokens.sizes() == torch::IntArrayRef({3, 513}));
  REQUIRE(batch.weight.sizes() == torch::IntArrayRef({3, 512}));
  auto r1 = d.row(2, 1);
  for (int64_t i = 0; i < 513; ++i) REQUIRE(batch.tokens[1][i].item<int64_t>() == r1.tokens[i]);

  // The answer of a NIAH training row is the needle value of a sample generated with the tagged seed,
  // never the sample an evaluation with the same index and untagged seed would see.
  TrainDataOptions n;
  n.mix = "niah1:1";
  n.context = 512;
  n.seed = 7;
  TrainData dn(n, resources());
  GenOptions g;
  g.seed = 7;
  auto eval_gen = make_generator("ruler", "niah_single_1", resources(), g);
  std::set<std::string> eval_answers;
  for (int64_t i = 0; i < 50; ++i) eval_answers.insert(eval_gen->generate(512, i).outputs.at(0));
  for (int64_t r = 0; r < 8; ++r) {
    auto row = dn.row(0, r);
    std::vector<int32_t> ans;
    for (int64_t i = 0; i < 512; ++i)
      if (row.weight[i] > 0 && row.tokens[i + 1] != resources().tokenizer->eos_id()) ans.push_back(row.tokens[i + 1]);
    std::string text = resources().tokenizer->decode(ans);
    while (!text.empty() && text.front() == ' ') text.erase(text.begin());
    REQUIRE(text.size() >= 6);
    REQUIRE(text.find_first_not_of("0123456789") == std::string::npos);
    REQUIRE(eval_answers.count(text) == 0);
  }
}

TEST_CASE("train data: copy rows repeat a segment beyond any short window, loss on the second copy", "[train_data]") {
  TrainDataOptions o;
  o.mix = "copy:1";
  o.context = 256;
  TrainData data(o, resources());
  int64_t digits_seen = 0;
  for (int64_t row = 0; row < 40; ++row) {
    auto r = data.row(3, row);
    REQUIRE(r.source == "copy");
    REQUIRE(r.tokens.size() == 257);
    REQUIRE(r.weight.size() == 256);
    const int64_t m = r.answer_tokens + 1;  // segment length
    REQUIRE(m >= 64);
    REQUIRE(m <= 128);
    for (int64_t i = 0; i < m; ++i) REQUIRE(r.tokens[m + i] == r.tokens[i]);
    for (int64_t j = 0; j < 256; ++j) REQUIRE(r.weight[j] == ((j >= m && j < 2 * m - 1) ? 1.0f : 0.0f));
    auto text = resources().tokenizer->decode(std::vector<int32_t>(r.tokens.begin(), r.tokens.begin() + m));
    for (char ch : text) digits_seen += (ch >= '0' && ch <= '9');
    auto again = data.row(3, row);
    REQUIRE(again.tokens == r.tokens);
  }
  REQUIRE(digits_seen > 0);  // numbers are part of the segments
  o.mix = "copy:1,niah1:1";
  o.context = 512;
  TrainData mixed(o, resources());
  std::set<std::string> sources;
  for (int64_t row = 0; row < 32; ++row) sources.insert(mixed.row(0, row).source);
  REQUIRE(sources == std::set<std::string>{"copy", "ruler/niah_single_1"});
}

TEST_CASE("train data: copy-wide rows pack copy episodes of short and long distances", "[train_data]") {
  TrainDataOptions o;
  o.mix = "copy-wide:1";
  o.context = 256;
  TrainData data(o, resources());
  int64_t short_eps = 0, long_eps = 0;
  for (int64_t row = 0; row < 40; ++row) {
    auto r = data.row(5, row);
    REQUIRE(r.source == "copy-wide");
    REQUIRE(r.tokens.size() == 257);
    REQUIRE(r.weight.size() == 256);
    // Walk the weight runs: every weighted run [a, b) predicts tokens a+1..b, which repeat the m = b - a + 1
    // tokens just before the run's episode start e = a - m.
    int64_t weighted = 0, covered_until = 0;
    for (int64_t j = 0; j < 256;) {
      if (r.weight[j] == 0.0f) {
        ++j;
        continue;
      }
      int64_t b = j;
      while (b < 256 && r.weight[b] > 0.0f) ++b;
      const int64_t m = b - j + 1, e = j - m;
      REQUIRE(m >= 4);
      REQUIRE(m <= 128);
      REQUIRE(e >= covered_until);  // episodes do not overlap
      for (int64_t i = 0; i < m; ++i) REQUIRE(r.tokens[j + i] == r.tokens[e + i]);
      (m <= 32 ? short_eps : long_eps) += 1;
      weighted += b - j;
      covered_until = j + m - 1;
      j = b;
    }
    REQUIRE(weighted == r.answer_tokens);
    REQUIRE(weighted >= 256 / 2 - 16);  // the row is packed: about half of it is supervised
    REQUIRE(data.row(5, row).tokens == r.tokens);
  }
  REQUIRE(short_eps > 0);  // within a short window
  REQUIRE(long_eps > 0);   // beyond it
}

TEST_CASE("train data: --loss-norm row gives every row the same total weight", "[train_data]") {
  TrainDataOptions o;
  o.mix = "copy-wide:0.5,niah1:0.5";
  o.context = 512;
  o.lengths = {448, 512};
  TrainData tok(o, resources());
  o.loss_norm = "row";
  TrainData row(o, resources());
  auto bt = tok.batch(2, 8), br = row.batch(2, 8);
  REQUIRE(torch::equal(bt.tokens, br.tokens));  // the same rows, only the weights differ
  auto st = bt.weight.sum(1), sr = br.weight.sum(1);
  std::set<std::string> kinds;
  for (int64_t b = 0; b < 8; ++b) {
    kinds.insert(tok.row(2, b).source);
    REQUIRE(st[b].item<double>() >= 8);  // token norm: one per supervised token (a needle answer + EOS: >= 8)
    REQUIRE(std::abs(sr[b].item<double>() - 1.0) < 1e-5);
    // Same support, proportional weights.
    REQUIRE(torch::equal(bt.weight[b].gt(0), br.weight[b].gt(0)));
    auto ratio = br.weight[b].masked_select(br.weight[b].gt(0)) / bt.weight[b].masked_select(bt.weight[b].gt(0));
    REQUIRE((ratio - ratio[0]).abs().max().item<double>() < 1e-6);
  }
  REQUIRE(kinds.size() == 2);  // both kinds of row, with very different token counts, weigh 1 each
  REQUIRE(row.describe()["loss_norm"] == "row");
  REQUIRE_FALSE(tok.describe().contains("loss_norm"));  // token: the recipe of runs from before the option
  o.loss_norm = "mean";
  REQUIRE_THROWS_AS(TrainData(o, resources()), Error);
}

TEST_CASE("train data: bad options", "[train_data]") {
  TrainDataOptions o;
  o.context = 512;
  o.lengths = {1024};
  REQUIRE_THROWS_AS(TrainData(o, resources()), Error);
  o.lengths = {};
  o.prompt_weight = -1;
  REQUIRE_THROWS_AS(TrainData(o, resources()), Error);
  o.prompt_weight = 0;
  o.mix = "bogus:1";
  REQUIRE_THROWS_AS(TrainData(o, resources()), Error);
}

TEST_CASE("lctx train / train-eval: bad input is a one-line error", "[train_data][cli]") {
  const std::string out = "/tmp/lctx_test_train_cli_" + std::to_string(::getpid());
  auto [rc1, o1] = lctx_test::run_lctx("train --arch transformer --steps 1 --out " + out);
  REQUIRE(rc1 == 1);
  REQUIRE(o1.find("lctx: error: --arch must be hsa, swa or mamba") != std::string::npos);
  auto [rc2, o2] = lctx_test::run_lctx("train --arch hsa --mix 'corpus:0.5,wiki:0.5' --steps 1 --out " + out);
  REQUIRE(rc2 == 1);
  REQUIRE(o2.find("lctx: error: --mix: unknown component 'wiki'") != std::string::npos);
  auto [rc3, o3] = lctx_test::run_lctx("train --arch hsa --mix 'niah=1' --steps 1 --out " + out);
  REQUIRE(rc3 == 1);
  REQUIRE(o3.find("lctx: error: --mix") != std::string::npos);
  auto [rc4, o4] = lctx_test::run_lctx("train --arch hsa --preset huge --steps 1 --out " + out);
  REQUIRE(rc4 == 1);
  REQUIRE(o4.find("--preset") != std::string::npos);
  auto [rc5, o5] = lctx_test::run_lctx("train --arch swa --resume --steps 1 --out " + out + "_none");
  REQUIRE(rc5 == 1);
  REQUIRE(o5.find("trainer_state.pt") != std::string::npos);
  auto [rc6, o6] = lctx_test::run_lctx("train-eval --checkpoint " + out + " --seed 9223372036854775809");
  REQUIRE(rc6 == 1);
  REQUIRE(o6.find("bit 63") != std::string::npos);
  std::system(("rm -rf " + out + " " + out + "_none").c_str());
}

TEST_CASE("lctx train --arch: every kind of models::model_kinds() trains and saves a checkpoint of that kind",
          "[train_data][cli]") {
  const std::string dir = "/tmp/lctx_test_train_kinds_" + std::to_string(::getpid());
  std::system(("rm -rf " + dir).c_str());
  for (const std::string& kind : lctx::models::model_kinds()) {
    INFO(kind);
    const std::string out = dir + "/" + kind;
    auto [rc, o] = lctx_test::run_lctx("train --arch " + kind +
                                       " --context 64 --mix copy:1 --batch 1 --steps 1 --threads 1 --log-every 100"
                                       " --out " + out);
    INFO(o);
    REQUIRE(rc == 0);
    auto cfg = nlohmann::json::parse(read_file(out + "/config.json"));
    CHECK(cfg["arch"]["kind"] == kind);
    CHECK(cfg["train"]["steps"] == 1);
    CHECK(file_exists(out + "/model.safetensors"));
  }
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("lctx train --init-from: a second stage starts from the first stage's weights", "[train_data][cli]") {
  const std::string dir = "/tmp/lctx_test_init_from_" + std::to_string(::getpid());
  std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  {
    std::FILE* f = std::fopen((dir + "/small.json").c_str(), "w");
    REQUIRE(f);
    std::fputs(R"({"d_model": 32, "n_heads": 2, "window": 16, "chunk": 16, "topk": 2, "encoder_layers": 1})", f);
    std::fclose(f);
  }
  const std::string common = " --context 64 --mix copy:1 --batch 2 --threads 1 --log-every 100";
  auto [rc1, o1] = lctx_test::run_lctx("train --arch hsa --config " + dir + "/small.json --steps 2" + common +
                                       " --out " + dir + "/s1");
  REQUIRE(rc1 == 0);
  // lr 1e-30 (far below one float ulp of any weight): the second stage writes back exactly the weights it
  // started from.
  auto [rc2, o2] = lctx_test::run_lctx("train --arch hsa --init-from " + dir + "/s1 --steps 1 --lr 1e-30 --min-lr 1e-30" +
                                       common + " --out " + dir + "/s2");
  REQUIRE(rc2 == 0);
  REQUIRE(read_file(dir + "/s1/model.safetensors") == read_file(dir + "/s2/model.safetensors"));
  auto cfg = nlohmann::json::parse(read_file(dir + "/s2/config.json"));
  REQUIRE(cfg["train"]["init_from"]["path"] == dir + "/s1");
  REQUIRE(cfg["train"]["init_from"]["fingerprint"] == checkpoint_fingerprint(dir + "/s1"));
  REQUIRE(cfg["train"]["init_from"]["train"]["steps"] == 2);
  REQUIRE(cfg["arch"] == nlohmann::json::parse(read_file(dir + "/s1/config.json"))["arch"]);
  // A real second stage moves the weights.
  auto [rc3, o3] = lctx_test::run_lctx("train --arch hsa --init-from " + dir + "/s1 --steps 2 --lr 1e-2" + common +
                                       " --out " + dir + "/s3");
  REQUIRE(rc3 == 0);
  REQUIRE(read_file(dir + "/s1/model.safetensors") != read_file(dir + "/s3/model.safetensors"));
  // One-line errors.
  auto [rc4, o4] = lctx_test::run_lctx("train --arch swa --init-from " + dir + "/s1 --steps 1 --out " + dir + "/x");
  REQUIRE(rc4 == 1);
  REQUIRE(o4.find("lctx: error: --init-from " + dir + "/s1: checkpoint kind hsa differs from --arch swa") !=
          std::string::npos);
  // --config with --init-from overrides architecture keys that leave the weights' shapes alone ...
  {
    std::FILE* f = std::fopen((dir + "/aux.json").c_str(), "w");
    REQUIRE(f);
    std::fputs(R"({"selection_aux": 0.5, "selection_sparsity": "off"})", f);
    std::fclose(f);
    f = std::fopen((dir + "/wide.json").c_str(), "w");
    REQUIRE(f);
    std::fputs(R"({"d_model": 64})", f);
    std::fclose(f);
  }
  auto [rc7, o7] = lctx_test::run_lctx("train --arch hsa --init-from " + dir + "/s1 --config " + dir +
                                       "/aux.json --steps 2 --lr 1e-2" + common + " --out " + dir + "/s4");
  REQUIRE(rc7 == 0);
  auto cfg4 = nlohmann::json::parse(read_file(dir + "/s4/config.json"));
  REQUIRE(cfg4["arch"]["selection_aux"] == 0.5);
  REQUIRE(cfg4["arch"]["selection_sparsity"] == "off");
  REQUIRE(cfg4["arch"]["d_model"] == 32);
  const auto log4 = read_file(dir + "/s4/train_log.jsonl");
  REQUIRE(log4.find("\"aux\":") != std::string::npos);  // the auxiliary loss is logged per step
  // ... and refuses one that changes them, in one line.
  auto [rc5, o5] = lctx_test::run_lctx("train --arch hsa --init-from " + dir + "/s1 --config " + dir +
                                       "/wide.json --steps 1 --out " + dir + "/x");
  REQUIRE(rc5 == 1);
  REQUIRE(o5.find("lctx: error: checkpoint " + dir + "/s1: tensor") != std::string::npos);
  REQUIRE(o5.find("has shape") != std::string::npos);
  auto [rc6, o6] = lctx_test::run_lctx("train --arch hsa --init-from " + dir + "/none --steps 1 --out " + dir + "/x");
  REQUIRE(rc6 == 1);
  REQUIRE(o6.find("no config.json") != std::string::npos);
  std::system(("rm -rf " + dir).c_str());
}
