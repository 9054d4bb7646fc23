// End-to-end tests of `lctx generate`: files, manifest, determinism, --index, and one-line errors.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/lengths.hpp"
#include "core/files.hpp"
#include "tests/catch.hpp"
#include "tests/one_line_error.hpp"

namespace fs = std::filesystem;

namespace {

using lctx_test::check_error;

std::string slurp(const std::string& f) {
  std::ifstream in(f, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lctx-test-generate-" + name + "-" + std::to_string(::getpid()));
  lctx::remove_tree(d);
  return d.string();
}

}  // namespace

TEST_CASE("generate writes JSONL files and a manifest, deterministically", "[cli][generate]") {
  const std::string a = tmpdir("a"), b = tmpdir("b");
  const std::string args = " --suite ruler --tasks niah_single_1,vt,niah_multivalue --lengths 4k,8k --samples 3 --out ";
  lctx_test::CmdResult ra = lctx_test::run_lctx("generate" + args + a + " --threads 2");
  INFO(ra.out);
  REQUIRE(ra.rc == 0);
  lctx_test::CmdResult rb = lctx_test::run_lctx("generate" + args + b + " --threads 1");
  REQUIRE(rb.rc == 0);
  for (std::string t : {"niah_single_1", "vt", "niah_multivalue"})
    for (std::string L : {"4k", "8k"}) {
      const std::string f = "/ruler/" + t + "/" + L + ".jsonl";
      REQUIRE(fs::exists(a + f));
      CHECK(!fs::exists(a + f + ".tmp"));
      std::string x = slurp(a + f);
      CHECK(x == slurp(b + f));  // same bytes whatever the thread count
      CHECK(std::count(x.begin(), x.end(), '\n') == 3);
      std::istringstream lines(x);
      std::string line;
      int64_t i = 0;
      while (std::getline(lines, line)) {
        auto j = nlohmann::json::parse(line);
        CHECK(j["index"] == i++);
        for (auto k : {"input", "outputs", "length", "length_w_model_temp", "answer_prefix", "token_position_answer", "lctx"})
          CHECK(j.contains(k));
        CHECK(j["length"].get<int64_t>() <= lctx::parse_length(L));
      }
    }
  auto man = nlohmann::json::parse(slurp(a + "/manifest.json"));
  CHECK(man["files"].size() == 6);
  CHECK(man["seed"] == 42);
  CHECK(man["tasks"].size() == 3);

  // One sample regenerated alone equals the same sample of the full run.
  lctx_test::CmdResult one = lctx_test::run_lctx("generate --tasks vt --lengths 8k --index 2");
  REQUIRE(one.rc == 0);
  std::istringstream lines(slurp(a + "/ruler/vt/8k.jsonl"));
  std::string line;
  for (int i = 0; i < 3; ++i) std::getline(lines, line);
  CHECK(one.out == line + "\n");
  lctx::remove_tree(a);
  lctx::remove_tree(b);
}

TEST_CASE("generate all: qa skipped without --qa-data, fixed depths, qa with fixtures", "[cli][generate]") {
  const std::string d = tmpdir("all");
  lctx_test::CmdResult r = lctx_test::run_lctx("generate --tasks all --lengths 4k --samples 1 --out " + d);
  INFO(r.out);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("skipping qa_1, qa_2: no --qa-data") != std::string::npos);
  CHECK(fs::exists(d + "/ruler/fwe/4k.jsonl"));
  CHECK(!fs::exists(d + "/ruler/qa_1"));
  lctx_test::CmdResult q = lctx_test::run_lctx("generate --tasks qa_1,qa_2,niah_single_2,cwe --lengths 4k --samples 2 --depths 0,100 --out " + d +
                 " --qa-data " + lctx_test::fixture("qa"));
  INFO(q.out);
  REQUIRE(q.rc == 0);
  CHECK(fs::exists(d + "/ruler/qa_1/4k-depth0.jsonl"));
  CHECK(fs::exists(d + "/ruler/qa_2/4k-depth100.jsonl"));
  CHECK(fs::exists(d + "/ruler/niah_single_2/4k-depth100.jsonl"));
  CHECK(fs::exists(d + "/ruler/cwe/4k.jsonl"));  // depth-free task: one file
  auto j = nlohmann::json::parse(slurp(d + "/ruler/niah_single_2/4k-depth0.jsonl").substr(0, slurp(d + "/ruler/niah_single_2/4k-depth0.jsonl").find('\n')));
  CHECK(j["lctx"]["requested_depth"] == 0.0);
  CHECK(j["lctx"]["needle_token_positions"][0].get<int64_t>() < 200);
  lctx::remove_tree(d);
}

TEST_CASE("generate errors are one line with a non-zero exit", "[cli][generate]") {
  const std::string d = tmpdir("err");
  check_error("generate --tasks nope --lengths 4k --out " + d, "unknown task 'nope'");
  check_error("generate --tasks vt --lengths 4q --out " + d, "4q");
  check_error("generate --tasks niah_single_1 --lengths 128 --out " + d, "impossible length 128");
  check_error("generate --tasks vt --lengths 4k --tokenizer /nonexistent.model --out " + d, "no such file");
  check_error("generate --tasks vt --lengths 4k --haystack /nonexistent-corpus --out " + d, "no such directory");
  check_error("generate --tasks vt --lengths 4k --out /proc/lctx-cannot-write", "/proc/lctx-cannot-write");
  check_error("generate --tasks qa_1 --lengths 4k --out " + d, "--qa-data");
  check_error("generate --suite nope --out " + d, "unknown suite");
  check_error("generate --tasks vt --lengths 4k --depths 150 --out " + d, "bad depth");
  lctx::remove_tree(d);
}

TEST_CASE("generate --layout ruler and --layout babilong write the upstream trees", "[cli][generate]") {
  const std::string d = tmpdir("layouts");
  auto r = lctx_test::run_lctx("generate --tasks vt,niah_single_1 --lengths 4k --samples 2 --layout ruler --out " + d + "/r");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  // RULER's call_api.py reads DATA_DIR/<task>/validation.jsonl with DATA_DIR = OUT/<max_seq_length>.
  const std::string f = d + "/r/4096/vt/validation.jsonl";
  REQUIRE(fs::exists(f));
  std::istringstream lines(slurp(f));
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    CHECK(j["index"] == n);
    for (const char* k : {"input", "outputs", "length", "length_w_model_temp", "answer_prefix", "others", "truncation"})
      CHECK(j.contains(k));
    CHECK(j["truncation"] == -1);
    CHECK(j["others"]["lctx"]["task"] == "vt");
    CHECK(!j.contains("lctx"));
    ++n;
  }
  CHECK(n == 2);
  CHECK(nlohmann::json::parse(slurp(d + "/r/manifest.json"))["layout"] == "ruler");

  auto b = lctx_test::run_lctx("generate --suite babilong --tasks qa1,qa10 --lengths 0,4k --samples 3 --layout babilong --out " + d + "/b");
  INFO(b.out);
  REQUIRE(b.rc == 0);
  for (const char* p : {"/b/data/qa1/0k.json", "/b/data/qa1/4k.json", "/b/data/qa10/4k.json"}) {
    auto arr = nlohmann::json::parse(slurp(d + p));
    REQUIRE(arr.is_array());
    REQUIRE(arr.size() == 3);
    CHECK(arr[0].size() == 3);
    CHECK(arr[0].contains("input"));
    CHECK(arr[0].contains("question"));
    CHECK(arr[0].contains("target"));
  }
  // A later run into the same folder adds its configs to the README.
  REQUIRE(lctx_test::run_lctx("generate --suite babilong --tasks qa2 --lengths 1m --samples 1 --layout babilong --out " + d + "/b").rc == 0);
  const std::string card = slurp(d + "/b/README.md");
  CHECK(card.rfind("---\nconfigs:\n- config_name: 0k\n  data_files:\n  - split: qa1\n    path: data/qa1/0k.json\n", 0) == 0);
  CHECK(card.find("- config_name: 4k\n  data_files:\n  - split: qa1\n    path: data/qa1/4k.json\n  - split: qa10\n"
                  "    path: data/qa10/4k.json\n") != std::string::npos);
  CHECK(card.find("- config_name: 1M\n  data_files:\n  - split: qa2\n    path: data/qa2/1M.json\n") != std::string::npos);
  check_error("generate --suite ruler --tasks vt --lengths 4k --layout babilong --out " + d + "/x", "--layout babilong needs --suite babilong");
  check_error("generate --tasks vt --lengths 4k --layout hf --out " + d + "/x", "unknown layout 'hf'");
}

TEST_CASE("generate writes long strings exactly as nlohmann's dump would (escaping pass)", "[cli][generate]") {
  // A haystack with quotes, backslashes, control characters, DEL and multi-byte UTF-8 inside words.
  const std::string hay = tmpdir("escape-hay"), out = tmpdir("escape-out");
  lctx::ensure_dir(hay);
  std::string words;
  const char* odd[] = {"say\"hi\"", "back\\slash", "bell\x07", "esc\x1b[0m", "del\x7f", "caf\xC3\xA9",
                       "\xE4\xB8\xAD\xE6\x96\x87", "smile\xF0\x9F\x98\x80", "nul-ish\x01\x1f", "form\x0c" "feed"};
  for (int i = 0; i < 400; ++i) words += std::string(odd[i % 10]) + " plain words here. ";
  { std::ofstream(hay + "/a.txt", std::ios::binary) << words; }
  lctx_test::CmdResult r = lctx_test::run_lctx("generate --suite ruler --tasks niah_single_2 --lengths 4k --samples 2 --haystack " +
                                               hay + " --out " + out);
  INFO(r.out);
  REQUIRE(r.rc == 0);
  std::istringstream lines(slurp(out + "/ruler/niah_single_2/4k.jsonl"));
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    nlohmann::json j = nlohmann::json::parse(line);
    CHECK(j.at("input").get<std::string>().find("say\"hi\"") != std::string::npos);
    CHECK(line == j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  CHECK(n == 2);
  lctx::remove_tree(hay);
  lctx::remove_tree(out);
}
