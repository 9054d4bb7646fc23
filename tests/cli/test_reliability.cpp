// Hostile input to the torch-free commands (generate, score, report): each case is a one-line
// "lctx: error: ..." naming the problem with a non-zero exit, or a correct success; nothing written is lost.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/files.hpp"
#include "tests/catch.hpp"
#include "tests/one_line_error.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using lctx_test::check_error;

std::string slurp(const std::string& f) {
  std::ifstream in(f, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void put(const std::string& f, const std::string& text) {
  fs::create_directories(fs::path(f).parent_path());
  std::ofstream(f, std::ios::binary) << text;
}
std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lctx-test-rel-" + name + "-" + std::to_string(::getpid()));
  lctx::remove_tree(d);
  fs::create_directories(d);
  return d.string();
}
// The built-in RULER templates with one field replaced.
std::string ruler_templates_with(const std::string& section, const std::string& field, const std::string& text) {
  auto j = json::parse(slurp(std::string(LCTX_SOURCE_ROOT) + "/tasks/templates/ruler.json"));
  j[section][field] = text;
  return j.dump(1);
}

json record(int index, double score, const std::string& tok = "aaaa", int64_t length = 512) {
  return {{"schema", "lctx.result/1"},
          {"key", "swa:ck|ruler|niah_single_1|512||" + std::to_string(index) + "|42"},
          {"model", "swa:ck"},      {"model_name", "ck"},        {"suite", "ruler"},
          {"task", "niah_single_1"}, {"length", length},          {"depth", nullptr},
          {"index", index},         {"seed", 42},                {"prediction", score > 0 ? "1234567" : "no"},
          {"reference", {"1234567"}}, {"metric", "string_match_all"}, {"score", score},
          {"prompt_tokens", 500},   {"max_new", 8},              {"tokenizer_hash", tok},
          {"prefill_s", 0.01},      {"device", "cpu"}};
}

}  // namespace

TEST_CASE("generate --templates: a needle without {key} or {value} is refused", "[reliability]") {
  auto d = tmpdir("tpl");
  put(d + "/nokey.json", ruler_templates_with("niah", "needle", "The magic number is {value}."));
  put(d + "/novalue.json", ruler_templates_with("niah", "needle", "The magic number for {key} is secret."));
  const std::string base = "generate --suite ruler --tasks niah_single_1 --lengths 1k --samples 1 --out " + d + "/o";
  check_error(base + " --templates " + d + "/nokey.json", "'niah.needle' lacks the placeholder {key}");
  check_error(base + " --templates " + d + "/novalue.json", "'niah.needle' lacks the placeholder {value}");
  CHECK(!fs::exists(d + "/o/ruler"));
}

TEST_CASE("generate --templates: an unknown {placeholder} is refused", "[reliability]") {
  auto d = tmpdir("tpl2");
  put(d + "/bogus.json", ruler_templates_with("niah", "question_single", "\nWhat is the {bogus} for {query}?"));
  check_error("generate --suite ruler --tasks niah_single_1 --lengths 1k --samples 1 --templates " + d +
                  "/bogus.json --out " + d + "/o",
              "unknown placeholder {bogus}");
  // Literal braces that are not placeholders stay allowed.
  put(d + "/braces.json", ruler_templates_with("niah", "instruction_single", "Read the text { carefully }.\n"));
  auto r = lctx_test::run_lctx("generate --suite ruler --tasks niah_single_1 --lengths 1k --samples 1 --templates " +
                               d + "/braces.json --out " + d + "/ok");
  INFO(r.out);
  CHECK(r.rc == 0);
  // BABILong templates are used as they are: a placeholder would reach every prompt literally.
  auto b = json::parse(slurp(std::string(LCTX_SOURCE_ROOT) + "/tasks/templates/babilong.json"));
  b["tasks"]["qa1"]["post_prompt"] = "Answer with {answer_format}.";
  put(d + "/bl.json", b.dump());
  check_error("generate --suite babilong --tasks qa1 --lengths 1k --samples 1 --templates " + d + "/bl.json --out " +
                  d + "/o",
              "qa1.post_prompt has the placeholder {answer_format}");
}

TEST_CASE("score: an unknown task is an error, not RULER scoring", "[reliability]") {
  auto d = tmpdir("score");
  put(d + "/preds.jsonl", json({{"pred", "x"}, {"outputs", {"x"}}, {"lctx", {{"task", "nosuch"}}}}).dump() + "\n");
  check_error("score " + d + "/preds.jsonl", "preds.jsonl:1: unknown task 'nosuch'");
  put(d + "/p2.jsonl", json({{"pred", "x"}, {"outputs", {"x"}}, {"task", "nosuch"}}).dump() + "\n");
  check_error("score " + d + "/p2.jsonl", "unknown task 'nosuch'");
  put(d + "/niah_single_1/4k.jsonl", json({{"pred", "x"}, {"outputs", {"x"}}}).dump() + "\n");
  check_error("score --task nosuch " + d + "/niah_single_1/4k.jsonl", "--task: unknown task 'nosuch'");
  auto r = lctx_test::run_lctx("score " + d + "/niah_single_1/4k.jsonl --out " + d + "/s.json");
  INFO(r.out);
  CHECK(r.rc == 0);
}

TEST_CASE("generate: a binary haystack file gets a clear message", "[reliability]") {
  auto d = tmpdir("hay");
  put(d + "/hay/a.txt", "The quick brown fox jumps over the lazy dog. It was a fine day.\n");
  std::string bin;
  for (int i = 0; i < 4000; ++i) bin.push_back(static_cast<char>((i * 7919) & 0xff));
  put(d + "/hay/b.txt", bin);
  check_error("generate --suite ruler --tasks niah_single_2 --lengths 1k --samples 1 --haystack " + d +
                  "/hay --out " + d + "/o",
              "b.txt is not UTF-8 text (binary data at byte 0)");
}

TEST_CASE("generate: a second run into the same --out keeps the earlier files in manifest.json", "[reliability]") {
  auto d = tmpdir("manifest");
  auto r1 = lctx_test::run_lctx("generate --suite ruler --tasks niah_single_1,vt --lengths 1k --samples 1 --out " + d);
  REQUIRE(r1.rc == 0);
  auto r2 = lctx_test::run_lctx("generate --suite ruler --tasks niah_single_1 --lengths 2k --samples 1 --out " + d);
  REQUIRE(r2.rc == 0);
  auto m = json::parse(slurp(d + "/manifest.json"));
  std::set<std::string> paths;
  for (auto& f : m["files"]) paths.insert(f["path"].get<std::string>());
  CHECK(paths == std::set<std::string>{"ruler/niah_single_1/1k.jsonl", "ruler/vt/1k.jsonl", "ruler/niah_single_1/2k.jsonl"});
  // Rewriting a file lists it once.
  REQUIRE(lctx_test::run_lctx("generate --suite ruler --tasks vt --lengths 1k --samples 2 --out " + d).rc == 0);
  m = json::parse(slurp(d + "/manifest.json"));
  CHECK(m["files"].size() == 3);
}

TEST_CASE("report: a record with a negative length is refused with FILE:LINE", "[reliability]") {
  auto d = tmpdir("neg");
  put(d + "/run/results.jsonl", record(0, 1).dump() + "\n" + record(1, 1, "aaaa", -5).dump() + "\n");
  check_error("report " + d + "/run --out " + d + "/rep", "results.jsonl:2: 'length' must be in [0, ");
  auto bad = record(1, 1);
  bad["index"] = -3;
  put(d + "/run3/results.jsonl", bad.dump() + "\n");
  check_error("report " + d + "/run3 --out " + d + "/rep", "results.jsonl:1: 'index' must be in [0, ");
}

TEST_CASE("report: a corrupt middle line is skipped and reported; a last record without its newline is kept",
          "[reliability]") {
  auto d = tmpdir("corrupt");
  put(d + "/run/results.jsonl", record(0, 1).dump() + "\n{\"schema\": \"lctx.res\x01garbage\n" + record(1, 0).dump() +
                                    "\n" + record(2, 1).dump());
  auto r = lctx_test::run_lctx("report " + d + "/run --out " + d + "/rep");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("lctx: warning: " + d + "/run/results.jsonl:2: skipped a line that is not valid JSON") !=
        std::string::npos);
  auto lb = json::parse(slurp(d + "/rep/leaderboard.json"));
  CHECK(lb.dump().find("\"n\":3") != std::string::npos);  // records 0, 1 and the unterminated 2
}

TEST_CASE("report A B: conflicting records of one key are an error, never silently dropped", "[reliability]") {
  auto d = tmpdir("conflict");
  put(d + "/a/results.jsonl", record(0, 1).dump() + "\n" + record(1, 1).dump() + "\n");
  put(d + "/b/results.jsonl", record(0, 0, "bbbb").dump() + "\n");
  check_error("report " + d + "/a " + d + "/b --out " + d + "/rep", "conflicts with " + d + "/a/results.jsonl:1");
  // The same records twice (a folder merged by hand) are one record each.
  put(d + "/c/results.jsonl", record(1, 1).dump() + "\n");
  auto r = lctx_test::run_lctx("report " + d + "/a " + d + "/c --out " + d + "/rep");
  INFO(r.out);
  CHECK(r.rc == 0);
  // Two tokenizers' results of one model are never averaged into one score.
  put(d + "/e/results.jsonl", record(5, 1, "bbbb").dump() + "\n");
  check_error("report " + d + "/a " + d + "/e --out " + d + "/rep", "has records made with two tokenizers");
}

TEST_CASE("generate, score, report: nonsense numbers and unknown options are one-line errors", "[reliability]") {
  auto d = tmpdir("opts");
  const std::string gen = "generate --suite ruler --tasks niah_single_1 --lengths 1k --samples 1 --out " + d + "/g";
  put(d + "/niah_single_1/4k.jsonl", json({{"pred", "x"}, {"outputs", {"x"}}}).dump() + "\n");
  put(d + "/run/results.jsonl", record(0, 1).dump() + "\n");
  const std::string score = "score " + d + "/niah_single_1/4k.jsonl --out " + d + "/s.json";
  const std::string report = "report " + d + "/run --out " + d + "/rep";
  fs::create_directories(d + "/emptyhay");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {gen + " --index -1", "--index must be an integer in [0, "},
      {gen + " --index -5", "--index must be an integer in [0, "},
      {gen + " --index 1.5", "--index must be an integer"},
      {gen + " --threads -1", "--threads must be an integer in [0, 1024], got '-1'"},
      {gen + " --threads 100000", "--threads must be an integer in [0, 1024]"},
      {gen + " --samples 99999999999", "--samples must be an integer in [1, 1000000], got '99999999999'"},
      {gen + " --samples 0", "--samples must be an integer in [1, 1000000]"},
      {gen + " --samples abc", "--samples must be an integer"},
      {gen + " --seed -1", "bad --seed '-1': expected an integer in [0, 2^63)"},
      {gen + " --seed 18446744073709551615", "bit 63 set"},
      {gen + " --seed 1e3", "bad --seed '1e3'"},
      {gen + " --lengths -5", "bad length '-5'"},
      {gen + " --lengths 99999m", "larger than 64G tokens"},
      {gen + " --depths nan", "bad depth 'nan'"},
      {gen + " --depths 101", "bad depth '101'"},
      {gen + " --layout nosuch", "unknown layout 'nosuch'"},
      {gen + " --bogus 1", "--bogus"},
      {"generate --samples", "--samples"},
      {score + " --length -5", "bad length '-5'"},
      {score + " --metric nosuch", "nosuch"},
      {report + " --threshold -1", "--threshold must be a finite number in [0, 100], got '-1'"},
      {report + " --threshold nan", "--threshold must be a finite number in [0, 100], got 'nan'"},
      {report + " --threshold 101", "--threshold must be a finite number in [0, 100]"},
      {report + " --score nosuch", "nosuch"},
      // Missing or empty inputs name the path.
      {gen + " --tokenizer " + d + "/none.model", "tokenizer " + d + "/none.model: no such file"},
      {gen + " --templates " + d + "/none.json", "cannot read " + d + "/none.json"},
      {"generate --tasks niah_single_2 --lengths 1k --samples 1 --haystack " + d + "/emptyhay --out " + d + "/g",
       "haystack corpus " + d + "/emptyhay: no .txt files"},
      {"generate --tasks nosuch --out " + d + "/g", "unknown task 'nosuch' for suite ruler"},
      {"score " + d + "/none.jsonl", "cannot read " + d + "/none.jsonl"},
      {"report " + d + "/none --out " + d + "/rep", "no such results directory or file: " + d + "/none"},
  };
  for (auto& [args, want] : cases) check_error(args, want);
  CHECK(!fs::exists(d + "/g"));
  CHECK(!fs::exists(d + "/rep"));
  // A record's length that is not a count is an error naming FILE:LINE, never an unknown length.
  put(d + "/p/niah_single_1/4k.jsonl",
      json({{"pred", "x"}, {"outputs", {"x"}}, {"lctx", {{"length", -5}}}}).dump() + "\n");
  check_error("score " + d + "/p/niah_single_1/4k.jsonl", "4k.jsonl:1: 'length' must be a non-negative integer, got -5");
}
