// Reports: aggregation, effective length, schema validation, shard-merge determinism, rendering, screenshot.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/common.hpp"
#include "reports/json_schema.hpp"
#include "reports/report.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/paths.hpp"
#include "core/files.hpp"
#include "tests/catch.hpp"

using nlohmann::json;
using namespace lctx::reports;
namespace fs = std::filesystem;

namespace {

std::string tmpdir(const std::string& name) {
  std::string d = "/tmp/lctx_test_reports_" + name + "_" + std::to_string(::getpid());
  lctx::remove_tree(d);
  lctx::ensure_dir(d);
  return d;
}

// Deterministic accuracy pattern: model "good" decays slowly with length, "weak" fast.
double score_for(const std::string& model, const std::string& task, int64_t len, int idx, double depth) {
  uint64_t h = lctx::fnv1a64(model + task + std::to_string(len) + std::to_string(idx) + std::to_string(depth));
  double p = model == "good" ? 1.0 - 0.02 * std::log2(len / 1024.0) : 1.0 - 0.25 * std::log2(len / 1024.0);
  if (task == "qa_1" || task == "qa2") p -= 0.1;
  return (static_cast<double>(h % 1000) / 1000.0) < p ? 1.0 : 0.0;
}

std::vector<json> make_records() {
  std::vector<json> out;
  const std::vector<std::pair<std::string, std::string>> tasks = {
      {"ruler", "niah_single_1"}, {"ruler", "vt"}, {"ruler", "qa_1"}, {"babilong", "qa1"}, {"babilong", "qa2"}};
  for (std::string model : {"good", "weak"})
    for (auto& [suite, task] : tasks)
      for (int64_t len : {1024, 2048, 4096, 8192})
        for (double depth : {0.0, 50.0, 100.0})
          for (int idx = 0; idx < 4; ++idx) {
            bool depths = task == "niah_single_1";
            if (!depths && depth != 0.0) continue;
            std::string d = depths ? lctx::reports::fixed(depth, 0) : "";
            std::string spec = "hsa:checkpoints/" + model;
            double sc = score_for(model, task, len, idx, depth);
            std::string pred = sc > 0 ? "answer" : (idx == 3 ? "" : "wrong");
            json r = {{"schema", "lctx.result/1"},
                      {"key", spec + "|" + suite + "|" + task + "|" + std::to_string(len) + "|" + d + "|" +
                                  std::to_string(idx) + "|42"},
                      {"model", spec},
                      {"model_name", model},
                      {"suite", suite},
                      {"task", task},
                      {"length", len},
                      {"depth", depths ? json(depth) : json(nullptr)},
                      {"index", idx},
                      {"seed", 42},
                      {"prediction", pred},
                      {"reference", {"answer"}},
                      {"metric", suite == "babilong" ? "babilong" : task == "qa_1" ? "string_match_part" : "string_match_all"},
                      {"score", sc},
                      {"prompt_tokens", len - 10},
                      {"prefill_s", len / (model == "good" ? 20000.0 : 5000.0)},
                      {"decode_s", 0.05},
                      {"tokens_per_s", (len - 10) / (len / (model == "good" ? 20000.0 : 5000.0))},
                      {"peak_device_mb", 100.0 + len / (model == "good" ? 512.0 : 64.0)},
                      {"peak_host_mb", 900.0 + idx},
                      {"device", "cpu"},
                      {"tokenizer_hash", "abc123"},
                      {"lctx_version", "0.1.0"},
                      {"git_hash", "deadbeef"},
                      {"shard", "0/1"},
                      {"time", "2026-01-01T00:00:0" + std::to_string(idx) + "Z"}};
            out.push_back(r);
          }
  return out;
}

void write_jsonl(const std::string& path, const std::vector<json>& recs, const std::string& tail = "") {
  std::string s;
  for (auto& r : recs) s += r.dump() + "\n";
  lctx::write_file_atomic(path, s + tail);
}

std::map<std::string, std::string> read_tree(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = lctx::read_file(e.path().string());
  return out;
}

const json& suite_of(const json& model, const std::string& suite) {
  for (auto& s : model["suites"])
    if (s["suite"] == suite) return s;
  FAIL("suite missing: " + suite);
  return model;
}

}  // namespace

TEST_CASE("effective_length: largest length with it and all shorter ones >= threshold") {
  CHECK(effective_length({{4096, 90}, {8192, 86}, {16384, 70}, {32768, 88}}, 85) == 8192);
  CHECK(effective_length({{16384, 70}, {4096, 90}, {8192, 86}}, 85) == 8192);  // order-free
  CHECK(!effective_length({{4096, 80}, {8192, 95}}, 85).has_value());
  CHECK(effective_length({{4096, 85.6}}, 85.6) == 4096);  // >= inclusive (RULER: Llama-2-7B's 85.6)
  CHECK(!effective_length({}, 85).has_value());
}

TEST_CASE("json schema validator: the subset we use") {
  json schema = json::parse(R"({"type":"object","required":["a"],"additionalProperties":false,
    "properties":{"a":{"type":"array","items":{"$ref":"#/definitions/x"}},"b":{"enum":["p","q"]},
                  "c":{"type":["integer","null"],"minimum":0}},
    "definitions":{"x":{"type":"number","maximum":10}}})");
  CHECK(validate_json(json::parse(R"({"a":[1,2.5],"b":"p","c":null})"), schema).empty());
  CHECK(validate_json(json::parse(R"({"a":[1,11]})"), schema).size() == 1);
  CHECK(validate_json(json::parse(R"({"b":"r"})"), schema).size() == 2);  // missing a, bad enum
  CHECK(validate_json(json::parse(R"({"a":[],"z":1})"), schema).front() == "$.z: additional property not allowed");
  CHECK(validate_json(json::parse(R"({"a":[],"c":-1})"), schema).front() == "$.c: below minimum 0");
  CHECK(validate_json(json::parse(R"({"a":"x"})"), schema).front().find("$.a: expected type") == 0);
}

TEST_CASE("leaderboard: values, averages, effective length, schema") {
  auto recs_j = make_records();
  std::vector<Record> recs;
  for (auto& j : recs_j) recs.push_back(parse_record(j, "test"));
  std::sort(recs.begin(), recs.end(), [](auto& a, auto& b) { return a.key < b.key; });
  ReportOptions opts;
  opts.threshold = 85;
  json lb = build_leaderboard(recs, opts);

  json schema = json::parse(lctx::read_file(lctx::asset("reports/schema/leaderboard.schema.json")));
  auto errs = validate_json(lb, schema);
  INFO((errs.empty() ? std::string() : errs.front()));
  CHECK(errs.empty());

  CHECK(lb["schema"] == "lctx.leaderboard/1");
  CHECK(lb["records"] == recs.size());
  REQUIRE(lb["models"].size() == 2);
  CHECK(lb["models"][0]["name"] == "good");
  CHECK(lb["suites"] == json({"ruler", "babilong"}));
  CHECK(lb["provenance"]["seeds"] == json({42}));

  // recompute every task x length accuracy and every suite average from the records by hand
  for (auto& m : lb["models"]) {
    std::string name = m["name"];
    for (auto& s : m["suites"]) {
      std::map<int64_t, std::vector<double>> task_accs;
      for (auto& t : s["tasks"]) {
        for (auto& l : t["lengths"]) {
          double sum = 0;
          int n = 0, nulls = 0;
          for (auto& r : recs)
            if (r.model_name == name && r.task == t["task"] && r.length == l["length"]) {
              sum += r.score, ++n;
              nulls += r.prediction.empty();
            }
          REQUIRE(n == l["n"].get<int>());
          CHECK(l["nulls"] == nulls);
          CHECK(std::abs(l["accuracy"].get<double>() - sum / n * 100) < 0.006);
          task_accs[l["length"].get<int64_t>()].push_back(sum / n * 100);
        }
      }
      std::vector<std::pair<int64_t, double>> pts;
      for (auto& l : s["average"]["lengths"]) {
        auto& v = task_accs[l["length"].get<int64_t>()];
        double mean = 0;
        for (double x : v) mean += x;
        mean /= v.size();
        CHECK(std::abs(l["accuracy"].get<double>() - mean) < 0.006);
        CHECK(l["tasks"] == v.size());
        CHECK(l["complete"] == (s["suite"] == "babilong" ? false : false));  // 3 of 13, 2 of 5
        pts.push_back({l["length"].get<int64_t>(), mean});
      }
      auto eff = effective_length(pts, 85);
      CHECK(s["average"]["effective_length"] == (eff ? json(*eff) : json(nullptr)));
    }
  }
  const json& weak_ruler = suite_of(lb["models"][1], "ruler");
  CHECK(weak_ruler["average"]["tasks"] == json({"niah_single_1", "vt", "qa_1"}));
  // the weak model falls below 85 before 8k; the good one keeps 1k
  CHECK(suite_of(lb["models"][0], "babilong")["average"]["name"] == "BABILong average (2 of qa1-qa5)");
  CHECK(weak_ruler["average"]["effective_length"].is_null() == false);
  CHECK(weak_ruler["average"]["effective_length"].get<int64_t>() < 8192);
  // overall and weighted averages
  double o = 0, wi = 0, wd = 0;
  auto& al = weak_ruler["average"]["lengths"];
  for (size_t i = 0; i < al.size(); ++i) {
    double a = al[i]["accuracy"];
    o += a / al.size();
    wi += a * (i + 1) / 10.0;
    wd += a * (al.size() - i) / 10.0;
  }
  CHECK(std::abs(weak_ruler["average"]["overall"].get<double>() - o) < 0.01);
  CHECK(std::abs(weak_ruler["average"]["weighted_inc"].get<double>() - wi) < 0.01);
  CHECK(std::abs(weak_ruler["average"]["weighted_dec"].get<double>() - wd) < 0.01);
  // depths only for the NIAH task, 3 depths x 4 lengths
  for (auto& t : weak_ruler["tasks"]) CHECK(t["depths"].size() == (t["task"] == "niah_single_1" ? 12u : 0u));
  // performance: peak = max, throughput = mean
  auto& perf = lb["models"][0]["performance"];
  REQUIRE(perf.size() == 4);
  CHECK(perf[0]["length"] == 1024);
  CHECK(perf[0]["peak_host_mb"].get<double>() == 903.0);
  CHECK(std::abs(perf[0]["peak_device_mb"].get<double>() - 102.0) < 1e-9);
  CHECK(std::abs(perf[0]["tokens_per_s"].get<double>() - 1014 / (1024 / 20000.0)) < 0.01);

  // a broken document is caught by the schema
  json bad = lb;
  bad["models"][0]["suites"][0]["tasks"][0]["lengths"][0]["accuracy"] = 120;
  bad["models"][0].erase("performance");
  CHECK(validate_json(bad, schema).size() == 2);
}

TEST_CASE("report: merged shards equal the unsharded run, byte for byte") {
  auto recs = make_records();
  std::string base = tmpdir("shards");
  // unsharded: one file, records in generation order
  lctx::ensure_dir(base + "/full");
  write_jsonl(base + "/full/results.jsonl", recs);
  // sharded: round-robin over 2 shard files with other shard/time fields, reversed order, a duplicate record and
  // an incomplete last line (a writer killed mid-line)
  lctx::ensure_dir(base + "/sharded");
  std::vector<json> s0, s1;
  for (size_t i = 0; i < recs.size(); ++i) {
    json r = recs[recs.size() - 1 - i];
    r["shard"] = std::to_string(i % 2) + "/2";
    r["time"] = "2027-05-05T10:00:00Z";
    (i % 2 ? s1 : s0).push_back(r);
  }
  s1.push_back(s0.front());  // duplicate key across shards
  write_jsonl(base + "/sharded/results.shard-0-of-2.jsonl", s0);
  write_jsonl(base + "/sharded/results.shard-1-of-2.jsonl", s1, "{\"schema\":\"lctx.result/1\",\"key\":\"x|");
  // the same shards in two separate folders
  lctx::ensure_dir(base + "/a");
  lctx::ensure_dir(base + "/b");
  write_jsonl(base + "/a/results.jsonl", s1);
  write_jsonl(base + "/b/results.shard-0-of-2.jsonl", s0);

  int64_t dup = -1;
  auto loaded = load_results({base + "/sharded"}, &dup);
  CHECK(loaded.size() == recs.size());
  CHECK(dup == 1);

  ReportOptions opts;
  write_report({base + "/full"}, base + "/out_full", opts);
  write_report({base + "/sharded"}, base + "/out_sharded", opts);
  write_report({base + "/b", base + "/a"}, base + "/out_ab", opts);
  auto full = read_tree(base + "/out_full"), sharded = read_tree(base + "/out_sharded"), ab = read_tree(base + "/out_ab");
  REQUIRE(full.count("leaderboard.json"));
  REQUIRE(full.count("report.html"));
  REQUIRE(full.count("report.md"));
  REQUIRE(full.count("charts/accuracy_ruler.svg"));
  REQUIRE(full.count("charts/depth_good_niah_single_1.svg"));
  REQUIRE(full.count("charts/throughput.svg"));
  REQUIRE(full.count("charts/memory.svg"));
  REQUIRE(full.size() == sharded.size());
  for (auto& [name, data] : full) {
    INFO(name);
    CHECK(sharded[name] == data);
    CHECK(ab[name] == data);
  }
  // no timestamps leak into the leaderboard
  CHECK(full["leaderboard.json"].find("2026-01-01") == std::string::npos);
  CHECK(full["leaderboard.json"].find("2027-05-05") == std::string::npos);
}

TEST_CASE("report: rendered files carry titles, legends, axis labels; HTML is self-contained") {
  std::string base = tmpdir("render");
  lctx::ensure_dir(base + "/run");
  write_jsonl(base + "/run/results.jsonl", make_records());
  ReportOptions opts;
  opts.title = "Test <report> & co";
  write_report({base + "/run"}, base + "/out", opts);
  std::string svg = lctx::read_file(base + "/out/charts/accuracy_ruler.svg");
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(svg.find("RULER: average accuracy vs context length") != std::string::npos);
  CHECK(svg.find(">context length (tokens, log2 scale)</text>") != std::string::npos);
  CHECK(svg.find(">accuracy (%)</text>") != std::string::npos);
  CHECK(svg.find(">Legend</text>") != std::string::npos);
  CHECK(svg.find(">good</text>") != std::string::npos);
  CHECK(svg.find(">weak</text>") != std::string::npos);
  CHECK(svg.find(">8k</text>") != std::string::npos);
  CHECK(svg.find("threshold 85.0") != std::string::npos);
  std::string heat = lctx::read_file(base + "/out/charts/depth_weak_niah_single_1.svg");
  CHECK(heat.find(">depth (% of context)</text>") != std::string::npos);
  CHECK(heat.find(">50</text>") != std::string::npos);
  std::string html = lctx::read_file(base + "/out/report.html");
  CHECK(html.find("<title>Test &lt;report&gt; &amp; co</title>") != std::string::npos);
  CHECK(html.find("<svg") != std::string::npos);
  CHECK(html.find("src=") == std::string::npos);   // no external assets
  CHECK(html.find("href=") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  std::string md = lctx::read_file(base + "/out/report.md");
  CHECK(md.find("# Test <report> & co") == 0);
  CHECK(md.find("| Model | Effective | 1k | 2k | 4k | 8k | Avg | wAvg (inc) | wAvg (dec) |") != std::string::npos);
  CHECK(md.find("| BABILong average (2 of qa1-qa5) |") != std::string::npos);
}

TEST_CASE("report: input errors") {
  std::string base = tmpdir("errors");
  lctx::ensure_dir(base + "/empty");
  REQUIRE_THROWS_WITH(load_results({base + "/empty"}), "no results.jsonl or results.*.jsonl in " + base + "/empty");
  REQUIRE_THROWS_AS(load_results({base + "/missing"}), lctx::Error);
  lctx::ensure_dir(base + "/bad");
  auto recs = make_records();
  recs[1].erase("score");
  write_jsonl(base + "/bad/results.jsonl", {recs[0], recs[1]});
  REQUIRE_THROWS_WITH(load_results({base + "/bad"}), base + "/bad/results.jsonl:2: missing number field 'score'");
  // A line that is not JSON is damaged, not a record: skipped (and named on stderr), the others kept.
  lctx::write_file_atomic(base + "/bad/results.jsonl", recs[0].dump() + "\n{oops}\n" + recs[2].dump() + "\n");
  REQUIRE(load_results({base + "/bad"}).size() == 2);
  // A line that is JSON but not a valid record is an error naming FILE:LINE.
  auto neg = recs[2];
  neg["length"] = -5;
  lctx::write_file_atomic(base + "/bad/results.jsonl", recs[0].dump() + "\n" + neg.dump() + "\n");
  REQUIRE_THROWS_WITH(load_results({base + "/bad"}), lctx_test::Contains(base + "/bad/results.jsonl:2"));
}

TEST_CASE("report --score teacher-forced: aggregates the records' teacher_forced, leaves out the others") {
  std::string base = tmpdir("tf");
  auto recs = make_records();
  size_t with = 0;
  for (size_t i = 0; i < recs.size(); ++i) {
    if (i % 3 == 2) continue;  // as a remote model's records: no teacher_forced
    recs[i]["teacher_forced"] = 1.0 - recs[i]["score"].get<double>();  // differs from score everywhere
    ++with;
  }
  lctx::ensure_dir(base + "/run");
  write_jsonl(base + "/run/results.jsonl", recs);
  ReportOptions o;
  write_report({base + "/run"}, base + "/score", o);
  o.score = "teacher-forced";
  write_report({base + "/run"}, base + "/tf", o);
  auto a = json::parse(lctx::read_file(base + "/score/leaderboard.json"));
  auto b = json::parse(lctx::read_file(base + "/tf/leaderboard.json"));
  CHECK(a["records"] == recs.size());
  CHECK(b["records"] == with);
  CHECK(b.dump().find("\"metric\":\"teacher_forced\"") != std::string::npos);
  CHECK(a.dump() != b.dump());
  o.score = "nope";
  REQUIRE_THROWS_AS(write_report({base + "/run"}, base + "/bad", o), lctx::Error);
  for (auto& r : recs) r.erase("teacher_forced");
  lctx::ensure_dir(base + "/none");
  write_jsonl(base + "/none/results.jsonl", recs);
  o.score = "teacher-forced";
  REQUIRE_THROWS_WITH(write_report({base + "/none"}, base + "/bad", o), lctx_test::Contains("teacher_forced"));
}

TEST_CASE("report.html renders in headless Chromium (screenshot)") {
  if (!fs::exists("/usr/bin/chromium")) {
    WARN("chromium not installed: screenshot test skipped");
    return;
  }
  std::string base = tmpdir("shot");
  lctx::ensure_dir(base + "/run");
  write_jsonl(base + "/run/results.jsonl", make_records());
  write_report({base + "/run"}, base + "/out", ReportOptions{});
  std::string png = base + "/report.png";
  std::string cmd = lctx::asset("scripts/screenshot_report.sh") + " " + base + "/out/report.html " + png +
                    " 1400 3000 > " + base + "/shot.log 2>&1";
  int rc = std::system(cmd.c_str());
  std::string log = lctx::file_exists(base + "/shot.log") ? lctx::read_file(base + "/shot.log") : "";
  INFO(log);
  REQUIRE(WIFEXITED(rc));
  REQUIRE(WEXITSTATUS(rc) == 0);
  std::string data = lctx::read_file(png);
  REQUIRE(data.size() > 50000);  // a blank page compresses to a few KB
  CHECK(data.compare(1, 3, "PNG") == 0);
  // IHDR: width and height as big-endian uint32 at offsets 16 and 20
  auto be32 = [&](size_t o) {
    return (uint32_t(uint8_t(data[o])) << 24) | (uint32_t(uint8_t(data[o + 1])) << 16) |
           (uint32_t(uint8_t(data[o + 2])) << 8) | uint32_t(uint8_t(data[o + 3]));
  };
  CHECK(be32(16) == 1400);
  CHECK(be32(20) == 3000);
}
