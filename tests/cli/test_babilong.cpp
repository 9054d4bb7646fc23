// End-to-end: `lctx generate --suite babilong` writes BABILong records whose prompts the library reproduces, and
// reports unknown tasks and impossible lengths as one-line errors.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/babi_check/check.hpp"
#include "core/files.hpp"
#include "tests/catch.hpp"

namespace fs = std::filesystem;

TEST_CASE("lctx generate --suite babilong writes BABILong records", "[cli][babilong]") {
  auto dir = (fs::temp_directory_path() / ("lctx-test-babilong-" + std::to_string(::getpid()))).string();
  lctx::remove_tree(dir);
  auto gen = lctx_test::run_lctx("generate --suite babilong --tasks qa1,qa7 --lengths 0k,4k --samples 3 --out " + dir);
  REQUIRE(gen.rc == 0);
  const std::string& out = gen.out;
  for (auto task : {"qa1", "qa7"}) {
    for (auto len : {"0", "4k"}) {
      std::string file = dir + "/babilong/" + task + "/" + len + ".jsonl";
      INFO(file << "\n" << out);
      REQUIRE(fs::exists(file));
      std::ifstream in(file);
      std::string line;
      int n = 0;
      while (std::getline(in, line)) {
        auto r = nlohmann::json::parse(line);
        REQUIRE(r.contains("input"));
        REQUIRE(r.contains("question"));
        REQUIRE(r.contains("target"));
        REQUIRE(r["lctx"]["prompt_tokens"].get<int64_t>() > 0);
        if (std::string(len) == "4k") REQUIRE(r["lctx"]["prompt_tokens"].get<int64_t>() + 20 <= 4096);
        // The facts of a 0k record are the whole input; the checker answers them.
        if (std::string(len) == "0") {
          std::vector<std::string> facts;
          std::string in_text = r["input"];
          size_t a = 0;
          while (a < in_text.size()) {
            size_t b = in_text.find(". ", a);
            if (b == std::string::npos) b = in_text.size() - 1;
            facts.push_back(in_text.substr(a, b + 1 - a));
            a = b + 2;
          }
          REQUIRE(lctx::babi_check::answer(task, facts, r["question"]) == r["target"].get<std::string>());
        }
        ++n;
      }
      REQUIRE(n == 3);
    }
  }
  lctx::remove_tree(dir);
  // Same seed, same bytes through --index.
  auto a = lctx_test::run_lctx("generate --suite babilong --tasks qa2 --lengths 2k --samples 2 --index 1");
  auto b = lctx_test::run_lctx("generate --suite babilong --tasks qa2 --lengths 2k --samples 2 --index 1");
  REQUIRE(a.rc == 0);
  REQUIRE(b.rc == 0);
  REQUIRE(a.out == b.out);
  REQUIRE(a.out.find("\"target\"") != std::string::npos);
}

TEST_CASE("lctx generate --suite babilong: one-line errors", "[cli][babilong]") {
  auto r = lctx_test::run_lctx("generate --suite babilong --tasks qa33 --lengths 4k --samples 1 --index 0");
  REQUIRE(r.rc == 1);
  REQUIRE(r.out.find("lctx: error: unknown task 'qa33'") != std::string::npos);
  r = lctx_test::run_lctx("generate --suite babilong --tasks qa1 --lengths 200 --samples 1 --index 0");
  REQUIRE(r.rc == 1);
  REQUIRE(r.out.find("lctx: error: babilong qa1: length 200 is too short") != std::string::npos);
}
