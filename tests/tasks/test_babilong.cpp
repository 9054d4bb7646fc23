// BABILong assembler: lengths, fact order and positions, depth, determinism, templates and errors.
#include <cstdio>
#include <filesystem>

#include "tasks/babi/babi.hpp"
#include "tests/babi_check/check.hpp"
#include "tasks/babilong/babilong.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/paths.hpp"
#include "core/files.hpp"
#include "tasks/sample.hpp"
#include "tests/catch.hpp"

using namespace lctx;

namespace {

const Resources& res() {
  static Resources r = [] {
    Resources x;
    x.tokenizer = Tokenizer::load(default_tokenizer_path());
    x.corpus = Corpus::load(Corpus::default_dir(), *x.tokenizer);
    return x;
  }();
  return r;
}

std::unique_ptr<TaskGenerator> gen(const std::string& task, bool keep_ids = true, const std::string& templates = "") {
  GenOptions o;
  o.keep_ids = keep_ids;
  o.templates = templates;
  return make_babilong_generator(task, res(), o);
}

// The facts, in order, recovered from the context by splitting the recorded positions.
void check_sample(const Sample& s, bool exact_count) {
  const Tokenizer& tok = *res().tokenizer;
  INFO(s.task << " at " << s.length);
  REQUIRE(s.suite == "babilong");
  REQUIRE(s.metric == "babilong");
  REQUIRE(s.tokens_to_generate == 20);
  REQUIRE(s.outputs == std::vector<std::string>{s.target});
  REQUIRE(static_cast<int64_t>(s.prompt_ids.size()) == s.prompt_tokens);
  if (exact_count) {
    // The count and the ids are those of one SentencePiece call of the whole prompt.
    const auto one = tok.encode(s.prompt);
    REQUIRE(static_cast<int64_t>(one.size()) == s.prompt_tokens);
    REQUIRE(one == s.prompt_ids);
  }
  if (s.length > 0) {
    REQUIRE(s.prompt_tokens + s.tokens_to_generate <= s.length);
    REQUIRE(s.prompt_tokens + s.tokens_to_generate >= s.length - babilong::kSlack);
  }
  // Prompt structure.
  REQUIRE(s.prompt.find("<context>\n" + s.input + "\n</context>\n\nQuestion: ") != std::string::npos);
  REQUIRE(s.prompt.size() >= 2);
  REQUIRE(s.prompt.back() == '?');  // the outer strip removes the question's trailing space
  // Facts in order at the recorded token positions; the checker answers from the facts found there.
  auto& pos = s.meta["fact_positions"];
  REQUIRE(pos.size() == s.meta["num_facts"].get<size_t>());
  std::vector<std::string> facts;
  int64_t prev = -1;
  size_t char_from = 0;
  for (size_t f = 0; f < pos.size(); ++f) {
    int64_t p = pos[f].get<int64_t>();
    REQUIRE(p > prev);
    prev = p;
    // Decode a window from the recorded position: it starts with a bAbI sentence.
    size_t end = std::min(s.prompt_ids.size(), static_cast<size_t>(p + 40));
    std::string w = tok.decode(std::vector<int32_t>(s.prompt_ids.begin() + p, s.prompt_ids.begin() + static_cast<long>(end)));
    size_t a = w.find_first_not_of(" \n");
    REQUIRE(a != std::string::npos);
    size_t dot = w.find('.', a);
    REQUIRE(dot != std::string::npos);
    std::string fact = w.substr(a, dot + 1 - a);
    // The same sentence occurs in the context in order.
    size_t at = s.input.find(fact, char_from);
    REQUIRE(at != std::string::npos);
    char_from = at + fact.size();
    facts.push_back(fact);
  }
  REQUIRE(babi_check::answer(s.task, facts, s.question) == s.target);
  for (auto& sp : s.meta["support_positions"]) {
    bool found = false;
    for (auto& p : pos) found = found || p == sp;
    REQUIRE(found);
  }
}

}  // namespace

TEST_CASE("babilong: all twenty tasks at 0k, 4k and 32k", "[babilong]") {
  for (auto& t : babilong_task_names()) {
    auto g = gen(t);
    REQUIRE(g->suite() == "babilong");
    REQUIRE(g->name() == t);
    REQUIRE(g->supports_depth());
    for (int64_t len : {int64_t(0), int64_t(4096), int64_t(32768)}) {
      auto s = g->generate(len, 3);
      check_sample(s, true);
      if (len == 0) {
        // 0k: pure bAbI facts, no background.
        REQUIRE(s.meta["background_pieces"] == 0);
        REQUIRE(s.meta["context_tokens"].get<int64_t>() < 2000);
      }
      auto rec = g->record(s);
      REQUIRE(rec["input"] == s.input);
      REQUIRE(rec["question"] == s.question);
      REQUIRE(rec["target"] == s.target);
      REQUIRE(rec["lctx"]["tokenizer"] == res().tokenizer->hash());
      REQUIRE(rec["lctx"]["story_id"].get<std::string>().size() > 16);
    }
  }
}

TEST_CASE("babilong: all twenty tasks at 1m", "[babilong]") {
  for (auto& t : babilong_task_names()) {
    auto s = gen(t)->generate(1 << 20, 0);
    check_sample(s, t == "qa1");  // the exact re-count of 1M tokens once; ids are checked for every task
  }
}

TEST_CASE("babilong: max_n_facts and impossible lengths", "[babilong]") {
  auto g = gen("qa2", false);
  for (int i = 0; i < 10; ++i) {
    auto s = g->generate(1024, i);
    REQUIRE(s.meta["num_facts"].get<int64_t>() + 1 <= 1024 / 8);
  }
  REQUIRE_THROWS_WITH(gen("qa1")->generate(100, 0), lctx_test::Contains("too short"));
  REQUIRE_THROWS_AS(gen("qa1")->generate(-5, 0), Error);
  REQUIRE_THROWS_AS(gen("qa1")->generate(4096, 0, 101.0), Error);
  REQUIRE_THROWS_WITH(make_babilong_generator("qa21", res(), GenOptions{}),
                      lctx_test::Contains("unknown task 'qa21'"));
}

TEST_CASE("babilong: depth places the supporting facts", "[babilong]") {
  for (double d : {0.0, 25.0, 50.0, 100.0}) {
    for (auto t : {"qa1", "qa2", "qa3"}) {
      auto s = gen(t)->generate(32768, 1, d);
      check_sample(s, false);
      REQUIRE(s.depth.has_value());
      for (auto& sd : s.meta["support_depths"]) {
        INFO(t << " depth " << d << " got " << sd);
        REQUIRE(std::abs(sd.get<double>() - d) < 3.0);
      }
    }
  }
}

TEST_CASE("babilong: determinism and golden hashes", "[babilong]") {
  auto g = gen("qa1", false);
  auto a = g->generate(4096, 7), b = g->generate(4096, 7), c = g->generate(4096, 8);
  REQUIRE(a.prompt == b.prompt);
  REQUIRE(a.meta == b.meta);
  REQUIRE(a.prompt != c.prompt);
  GenOptions o;
  o.seed = 43;
  REQUIRE(make_babilong_generator("qa1", res(), o)->generate(4096, 7).prompt != a.prompt);
  // Pinned bytes: a change here changes every published sample (update deliberately, with a note).
  CHECK(hex64(fnv1a64(gen("qa1", false)->generate(0, 0).prompt)) == "2d382dd5bc5f9173");
  CHECK(hex64(fnv1a64(gen("qa1", false)->generate(4096, 0).prompt)) == "f52f00de7f16d730");
  CHECK(hex64(fnv1a64(gen("qa5", false)->generate(32768, 2).prompt)) == "0f83df37a22e1b50");
  CHECK(hex64(fnv1a64(gen("qa19", false)->generate(4096, 1, 50.0).prompt)) == "090af8aacfb1a193");
}

TEST_CASE("babilong: templates replace the prompt wording", "[babilong]") {
  auto s = gen("qa1", false)->generate(0, 0);
  REQUIRE(s.prompt.rfind("You will read", 0) == 0);
  REQUIRE(s.prompt.find("<example>") != std::string::npos);
  auto j = babilong::load_templates(babilong::default_templates_path());
  // No duplicate <context> blocks in the examples (a quirk of the original files).
  for (auto& t : babi::task_names()) REQUIRE(j["tasks"][t]["examples"].get<std::string>().find("<context>") == std::string::npos);
  j["id"] = "test";
  for (auto& t : babi::task_names()) {
    j["tasks"][t]["instruction"] = "INSTRUCTION " + t;
    j["tasks"][t]["examples"] = "";
  }
  auto path = (std::filesystem::temp_directory_path() / "lctx_babilong_templates_test.json").string();
  write_file_atomic(path, j.dump());
  auto s2 = gen("qa1", true, path)->generate(2048, 0);
  REQUIRE(s2.prompt.rfind("INSTRUCTION qa1\n\n\n\n", 0) == 0);
  REQUIRE(s2.meta["template"] == "test");
  check_sample(s2, true);
  j["tasks"].erase("qa7");
  write_file_atomic(path, j.dump());
  REQUIRE_THROWS_WITH(gen("qa1", false, path), lctx_test::Contains("no entry for qa7"));
  write_file_atomic(path, "{not json");
  REQUIRE_THROWS_WITH(gen("qa1", false, path), lctx_test::Contains("invalid JSON"));
  std::remove(path.c_str());
}
