// End-to-end test of `lctx report` on a results folder built here.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "core/files.hpp"
#include "tests/catch.hpp"

using nlohmann::json;

TEST_CASE("lctx report: results folder -> leaderboard.json, report.md, charts, report.html") {
  std::string d = "/tmp/lctx_test_cli_report_" + std::to_string(::getpid());
  std::system(("rm -rf " + d).c_str());
  lctx::ensure_dir(d + "/run");
  std::string lines;
  for (int64_t len : {4096, 8192, 16384})
    for (int i = 0; i < 4; ++i)
      for (std::string task : {"niah_single_2", "qa1"}) {
        std::string suite = task == "qa1" ? "babilong" : "ruler";
        double score = (len == 16384 && i < 2) ? 0.0 : 1.0;
        lines += json{{"schema", "lctx.result/1"},
                      {"key", "swa:m|" + suite + "|" + task + "|" + std::to_string(len) + "||" + std::to_string(i) + "|1"},
                      {"model", "swa:m"}, {"model_name", "m"}, {"suite", suite}, {"task", task}, {"length", len},
                      {"depth", nullptr}, {"index", i}, {"seed", 1}, {"prediction", "x"}, {"reference", {"x"}},
                      {"metric", suite == "ruler" ? "string_match_all" : "babilong"}, {"score", score},
                      {"prompt_tokens", len}, {"prefill_s", 0.5}, {"decode_s", 0.1}, {"tokens_per_s", len / 0.5},
                      {"peak_device_mb", 10.0}, {"peak_host_mb", 300.0}, {"device", "cpu"}}
                     .dump() + "\n";
      }
  lctx::write_file_atomic(d + "/run/results.jsonl", lines + "{\"key\":\"trunc");  // incomplete last line ignored
  auto [rc, out] = lctx_test::run_lctx("report " + d + "/run --out " + d + "/rep --threshold 80 --title 'CLI test'");
  INFO(out);
  REQUIRE(rc == 0);
  for (auto f : {"leaderboard.json", "report.md", "report.html", "charts/accuracy_ruler.svg",
                 "charts/accuracy_babilong.svg", "charts/throughput.svg", "charts/memory.svg"})
    CHECK(lctx::file_exists(d + "/rep/" + f));
  json lb = json::parse(lctx::read_file(d + "/rep/leaderboard.json"));
  CHECK(lb["title"] == "CLI test");
  CHECK(lb["threshold"] == 80.0);
  CHECK(lb["records"] == 24);
  auto& ruler = lb["models"][0]["suites"][0];
  CHECK(ruler["suite"] == "ruler");
  CHECK(ruler["average"]["effective_length"] == 8192);  // 16k: 50% < 80
  CHECK(ruler["average"]["lengths"][2]["accuracy"] == 50.0);

  auto bad = lctx_test::run_lctx("report " + d + "/nothing --out " + d + "/rep2");
  CHECK(bad.rc == 1);
  CHECK(bad.out.find("lctx: error: no such results directory or file: " + d + "/nothing") != std::string::npos);
  bad = lctx_test::run_lctx("report " + d + "/run --out " + d + "/rep2 --threshold 120");
  CHECK(bad.rc != 0);
}
