// Native RULER generators: token bounds, needle/answer positions, determinism (golden hashes), QA fixtures.
#include <algorithm>
#include <map>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "tasks/sample.hpp"
#include "tests/catch.hpp"

using namespace lctx;

namespace {

const Resources& res() {
  static Resources r = load_resources("", "");
  return r;
}

GenOptions opts(bool keep_ids = false) {
  GenOptions o;
  o.keep_ids = keep_ids;
  o.qa_data = lctx_test::fixture("qa");
  return o;
}

int64_t slack_of(const std::string& task) { return task == "niah_multikey_3" ? 48 : 32; }

// The token at `pos` covers prompt character `c`: ids[0, pos) decode to a prefix that ends at or before c,
// ids[0, pos] to one that reaches past it.
void check_position(const Tokenizer& tok, const std::vector<int32_t>& ids, const std::string& prompt, int64_t pos, int64_t c) {
  REQUIRE(pos >= 0);
  REQUIRE(pos < static_cast<int64_t>(ids.size()));
  std::string before = tok.decode(std::vector<int32_t>(ids.begin(), ids.begin() + pos));
  std::string upto = tok.decode(std::vector<int32_t>(ids.begin(), ids.begin() + pos + 1));
  REQUIRE(prompt.compare(0, before.size(), before) == 0);
  CHECK(static_cast<int64_t>(before.size()) <= c);
  CHECK(static_cast<int64_t>(upto.size()) > c);
}

void check_sample(const TaskGenerator& g, const Sample& s) {
  const Tokenizer& tok = *res().tokenizer;
  const std::string prompt = s.prompt_text();
  const int64_t budget = s.length - s.tokens_to_generate;
  INFO(s.task << " " << s.length << " #" << s.index);
  CHECK(s.prompt_tokens <= budget);
  CHECK(s.prompt_tokens >= budget - slack_of(s.task));
  std::vector<int32_t> ids = tok.encode(prompt);  // one SentencePiece call of the whole prompt
  REQUIRE(static_cast<int64_t>(ids.size()) == s.prompt_tokens);
  if (!s.prompt_ids.empty()) CHECK(s.prompt_ids == ids);  // the one-call ids
  REQUIRE(!s.outputs.empty());
  // Every reference is in the input (qa: at least one, HotpotQA yes/no answers excepted).
  if (s.metric == "string_match_all") {
    for (auto& o : s.outputs) CHECK(s.input.find(o) != std::string::npos);
  }
  auto& m = s.meta;
  auto nt = m["needle_token_positions"].get<std::vector<int64_t>>();
  auto nc = m["needle_char_offsets"].get<std::vector<int64_t>>();
  REQUIRE(nt.size() == nc.size());
  REQUIRE(!nt.empty());
  for (size_t i = 0; i < nt.size(); ++i) check_position(tok, ids, prompt, nt[i], nc[i]);
  if (s.task == "niah_single_ids")
    for (int64_t c : nc) CHECK(prompt.compare(c, 24, "| The secret code for th") == 0);
  else if (s.task.rfind("niah", 0) == 0)
    for (int64_t c : nc) CHECK(prompt.compare(c, 24, "One of the special magic") == 0);
  if (s.task == "vt")
    for (int64_t c : nc) CHECK(prompt.compare(c, 4, "VAR ") == 0);
  const int64_t ap = m["answer_token_position"].get<int64_t>();
  if (m.contains("answer_char_offset")) {
    int64_t c = m["answer_char_offset"].get<int64_t>();
    CHECK(prompt.compare(c, s.outputs[0].size(), s.outputs[0]) == 0);
    check_position(tok, ids, prompt, ap, c);
  } else if (s.task != "qa_2") {
    REQUIRE(ap >= 0);
    // The answer's first token decodes to text that begins the first reference.
    std::string at = tok.decode(std::vector<int32_t>(ids.begin() + ap, ids.begin() + std::min<int64_t>(ap + 8, ids.size())));
    while (!at.empty() && at[0] == ' ') at.erase(0, 1);
    std::string want = s.outputs[0].substr(0, 3);
    CHECK(at.find(want) != std::string::npos);
  }
  auto rec = g.record(s);
  CHECK(rec["length"].get<int64_t>() == s.prompt_tokens + s.tokens_to_generate);
  CHECK(rec["input"].get<std::string>() + rec["answer_prefix"].get<std::string>() == prompt);
  CHECK(rec["lctx"]["tokenizer"] == tok.hash());
}

}  // namespace

TEST_CASE("ruler task list and registry", "[ruler]") {
  auto names = task_names("ruler");
  REQUIRE(names.size() == 14);  // RULER's 13 and the HSA authors' single needle (niah_single_ids)
  CHECK(names.front() == "niah_single_1");
  CHECK(names[12] == "qa_2");
  CHECK(names.back() == "niah_single_ids");
  REQUIRE_THROWS_WITH(expand_tasks("ruler", "niah_single_1,nope"), lctx_test::Contains("unknown task 'nope'"));
  GenOptions o;  // no qa data
  REQUIRE_THROWS_WITH(make_generator("ruler", "qa_1", res(), o), lctx_test::Contains("--qa-data"));
  o.qa_data = lctx_test::fixture("qa/squad.json");
  REQUIRE_THROWS_WITH(make_generator("ruler", "qa_2", res(), o), lctx_test::Contains("not a HotpotQA"));
  o.templates = "/nonexistent/templates.json";
  REQUIRE_THROWS_AS(make_generator("ruler", "vt", res(), o), Error);
}

TEST_CASE("every ruler task fits 4K and 32K exactly, needles at their recorded token positions", "[ruler]") {
  for (auto& t : task_names("ruler")) {
    auto g = make_generator("ruler", t, res(), opts(true));
    for (int64_t L : {int64_t(4096), int64_t(32768)})
      for (int64_t i : {int64_t(0), int64_t(1)}) {
        Sample s = g->generate(L, i);
        check_sample(*g, s);
        CHECK(s.meta["count_verified"].get<bool>());
      }
  }
}

TEST_CASE("ruler small lengths and impossible lengths", "[ruler]") {
  for (auto& t : task_names("ruler")) {
    auto g = make_generator("ruler", t, res(), opts());
    check_sample(*g, g->generate(g->min_length(), 3));
    REQUIRE_THROWS_WITH(g->generate(g->min_length() - 1, 0), lctx_test::Contains("impossible length"));
  }
}

TEST_CASE("ruler samples are pure functions of their arguments (golden hashes)", "[ruler]") {
  // Pinned: a change here changes generated data; update only on purpose (and say so in the changelog).
  const std::map<std::string, std::string> golden = {
      {"niah_single_1", "895165db94c24131"},
      {"niah_single_2", "266b34bc00b96515"},
      {"niah_single_3", "0ca492e5da8debcf"},
      {"niah_multikey_1", "ce179f22b35d1de4"},
      {"niah_multikey_2", "3447ebd592e1b225"},
      {"niah_multikey_3", "917d2189eab58ad3"},
      {"niah_multivalue", "76cb2c8a9ad25ebe"},
      {"niah_multiquery", "b94393af67e31b54"},
      {"vt", "616582ad9291d8ad"},
      {"cwe", "d29f206e20da828c"},
      {"fwe", "2c909fd24c9cc05a"},
      {"qa_1", "1183d122515a6041"},
      {"qa_2", "07548f246fe4b228"},
      {"niah_single_ids", "911d97120829f204"},
  };
  std::map<std::string, std::string> got;
  for (auto& t : task_names("ruler")) {
    auto g = make_generator("ruler", t, res(), opts());
    auto g2 = make_generator("ruler", t, res(), opts());
    Sample a = g->generate(4096, 7), b = g2->generate(4096, 7), c = g->generate(4096, 8);
    std::string ra = g->record(a).dump(), rb = g2->record(b).dump();
    CHECK(ra == rb);
    CHECK(ra != g->record(c).dump());
    got[t] = hex64(fnv1a64(ra));
  }
  for (auto& [t, h] : got) {
    INFO("golden hash of " << t << " 4k #7 is " << h);
    if (golden.count(t)) CHECK(golden.at(t) == h);
  }
  CHECK(golden.size() == got.size());
  // Other seeds give other samples.
  GenOptions o = opts();
  o.seed = 43;
  auto g = make_generator("ruler", "niah_single_2", res(), o);
  auto g42 = make_generator("ruler", "niah_single_2", res(), opts());
  CHECK(g->generate(4096, 7).input != g42->generate(4096, 7).input);
}

TEST_CASE("ruler needles go to requested depths", "[ruler]") {
  for (std::string t : {"niah_single_1", "niah_single_2", "niah_multikey_2", "niah_multiquery", "qa_1"}) {
    auto g = make_generator("ruler", t, res(), opts());
    REQUIRE(g->supports_depth());
    for (double d : {0.0, 50.0, 100.0}) {
      Sample s = g->generate(16384, 2, d);
      check_sample(*g, s);
      CHECK(s.meta["requested_depth"].get<double>() == d);
      // Depth of the first answer (tokens) relative to the prompt, within a few percent (sentence/document snap).
      double at = 100.0 * double(s.meta["answer_token_position"].get<int64_t>()) / double(s.prompt_tokens);
      INFO(t << " depth " << d << " landed at " << at);
      CHECK(std::abs(at - d) < (t == "qa_1" ? 15.0 : 6.0));
    }
  }
  auto vt = make_generator("ruler", "vt", res(), opts());
  CHECK_FALSE(vt->supports_depth());
  CHECK(vt->generate(4096, 0, 50.0).input == vt->generate(4096, 0).input);  // ignored
}

TEST_CASE("1M prompts: the recorded count is the one-call count, not the per-chunk sum", "[ruler][long]") {
  // The three haystack shapes (space-joined essay, newline-joined noise lines, newline-joined needles). The
  // per-chunk sum (Tokenizer::count) drifts from one SentencePiece call by tens of tokens here; the record
  // follows the one call (compared with a real call in tests/tasks/test_one_call.cpp).
  const Tokenizer& tok = *res().tokenizer;
  for (std::string t : {"niah_single_2", "niah_single_1", "niah_multikey_2"}) {
    auto g = make_generator("ruler", t, res(), opts());
    Sample s = g->generate(1 << 20, 0);
    CHECK(s.meta["count_verified"].get<bool>());
    CHECK(tok.count_one_call(s.prompt_text()) == s.prompt_tokens);
    CHECK(s.prompt_tokens <= (1 << 20) - 128);
    CHECK(s.prompt_tokens >= (1 << 20) - 128 - slack_of(t));
  }
}

TEST_CASE("ruler qa reads SQuAD and HotpotQA fixtures (file or folder)", "[ruler]") {
  GenOptions o = opts();
  o.qa_data = lctx_test::fixture("qa/squad.json");
  auto g = make_generator("ruler", "qa_1", res(), o);
  Sample s = g->generate(4096, 0);
  CHECK(s.outputs == std::vector<std::string>{"1871", "in 1871"});
  CHECK(s.input.find("When was the lighthouse on Gull Point built?") != std::string::npos);
  CHECK(s.metric == "string_match_part");
  auto g2 = make_generator("ruler", "qa_2", res(), opts());
  Sample h = g2->generate(4096, 3);
  CHECK(h.outputs == std::vector<std::string>{"yes"});
  CHECK(h.meta["needle_token_positions"].size() == 1);  // one supporting paragraph
  Sample h0 = g2->generate(8192, 0);
  CHECK(h0.meta["needle_token_positions"].size() == 2);
  check_sample(*g2, h0);
}

TEST_CASE("niah_single_ids: a code of 7 random vocabulary tokens hidden in corpus prose", "[ruler]") {
  const Tokenizer& tok = *res().tokenizer;
  auto g = make_generator("ruler", "niah_single_ids", res(), opts(true));
  REQUIRE(g->supports_depth());
  std::vector<std::string> seen;
  for (int64_t L : {int64_t(384), int64_t(4096), int64_t(65536)})
    for (int64_t i : {int64_t(0), int64_t(1), int64_t(2)}) {
      Sample s = g->generate(L, i);
      INFO(L << " #" << i);
      check_sample(*g, s);  // length within the slack, needle and answer at their recorded positions
      REQUIRE(s.outputs.size() == 1);
      const std::string& code = s.outputs[0];
      CHECK(s.input.find(code) != std::string::npos);
      // The code is 7 tokens, exactly its recorded ids, and the ids sit contiguously in the prompt.
      auto ids = s.meta["answer_ids"].get<std::vector<int32_t>>();
      REQUIRE(ids.size() == 7);
      CHECK(tok.encode(code) == ids);
      const auto ap = s.meta["answer_token_position"].get<int64_t>();
      REQUIRE(ap + 7 <= static_cast<int64_t>(s.prompt_ids.size()));
      CHECK(std::vector<int32_t>(s.prompt_ids.begin() + ap, s.prompt_ids.begin() + ap + 7) == ids);
      // Real prose around the needle: the essay haystack of the corpus.
      CHECK(s.meta["haystack"] == "essay");
      CHECK(s.meta["corpus"] == res().corpus->hash());
      const double d = s.meta["depths"][0].get<double>();
      CHECK(d >= 0.0);
      CHECK(d <= 100.0);
      seen.push_back(code);
    }
  std::sort(seen.begin(), seen.end());
  CHECK(std::unique(seen.begin(), seen.end()) == seen.end());  // every sample draws its own code
  // A requested depth puts the needle there (within the sentence snap).
  Sample s = g->generate(16384, 4, 50.0);
  const double at = 100.0 * double(s.meta["answer_token_position"].get<int64_t>()) / double(s.prompt_tokens);
  CHECK(std::abs(at - 50.0) < 6.0);
}
