// Results store (crash-safe JSONL), keys, grid and shards, model specs.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "harness/grid.hpp"
#include "harness/progress.hpp"
#include "harness/results.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "models/model.hpp"
#include "tests/catch.hpp"
#include "tests/harness/matchers.hpp"
using lctx_harness_test::has;
using lctx_harness_test::temp_dir;

using namespace lctx::harness;
namespace fs = std::filesystem;

namespace {
std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void spit(const std::string& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}
}  // namespace

TEST_CASE("depth and result keys are canonical") {
  CHECK(depth_key(std::nullopt) == "");
  CHECK(depth_key(50.0) == "50");
  CHECK(depth_key(12.5) == "12.5");
  CHECK(depth_key(0.1) == "0.1");
  CHECK(depth_key(100.0) == "100");
  CHECK(depth_key(-0.0) == "0");
  CHECK(result_key("swa:ck/a", "ruler", "niah_single_1", 4096, 25.0, 3, 42) == "swa:ck/a|ruler|niah_single_1|4096|25|3|42");
  CHECK(result_key("m", "babilong", "qa1", 1024, std::nullopt, 0, 7) == "m|babilong|qa1|1024||0|7");
  CHECK(results_file_name(0, 1) == "results.jsonl");
  CHECK(results_file_name(2, 8) == "results.shard-2-of-8.jsonl");
}

TEST_CASE("the store truncates an incomplete last line and appends whole lines") {
  auto dir = temp_dir("store");
  auto path = dir + "/results.jsonl";
  const std::string good = "{\"key\":\"a\"}\n{\"key\":\"b\"}\n";
  spit(path, good + "{\"key\":\"c\",\"predic");
  {
    ResultStore st(path);
    CHECK(st.truncated_bytes() == 18);  // the partial line {"key":"c","predic
    CHECK(slurp(path) == good);
    st.append({{"key", "c"}, {"text", "line\nbreak \xff"}});
  }
  auto recs = read_records(path);
  REQUIRE(recs.size() == 3);
  CHECK(recs[2]["key"] == "c");
  CHECK(recs[2]["text"].get<std::string>().find("line\nbreak") == 0);  // newline escaped inside the JSON line
  std::set<std::string> keys;
  read_keys(path, keys);
  CHECK(keys == std::set<std::string>{"a", "b", "c"});

  SECTION("a file with only a partial line becomes empty") {
    spit(path, "{\"key\":\"x\"");
    ResultStore st(path);
    CHECK(st.truncated_bytes() == 10);
    CHECK(slurp(path).empty());
  }
  SECTION("readers ignore a partial last line and garbage lines") {
    spit(path, good + "not json\n{\"key\":\"z\"");
    std::set<std::string> k;
    read_keys(path, k);
    CHECK(k == std::set<std::string>{"a", "b"});
  }
  SECTION("an intact file is untouched") {
    spit(path, good);
    ResultStore st(path);
    CHECK(st.truncated_bytes() == 0);
    CHECK(slurp(path) == good);
  }
  SECTION("an unwritable path is a clear error") {
    REQUIRE_THROWS_WITH(ResultStore(dir + "/no/such/dir/results.jsonl"),
                        lctx_test::Contains("cannot open"));
  }
  lctx::remove_tree(dir);
}

TEST_CASE("concurrent appends never interleave") {
  auto dir = temp_dir("concurrent");
  auto path = dir + "/results.jsonl";
  {
    ResultStore st(path);
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t)
      ts.emplace_back([&, t] {
        for (int i = 0; i < 40; ++i)
          st.append({{"key", std::to_string(t) + "/" + std::to_string(i)}, {"pad", std::string(3000, 'a' + t)}});
      });
    for (auto& t : ts) t.join();
  }
  auto recs = read_records(path);
  REQUIRE(recs.size() == 320);
  std::set<std::string> keys;
  for (auto& r : recs) {
    keys.insert(r["key"].get<std::string>());
    auto pad = r["pad"].get<std::string>();
    CHECK(pad == std::string(3000, pad[0]));
  }
  CHECK(keys.size() == 320);
  lctx::remove_tree(dir);
}

TEST_CASE("results_files lists the unsharded and shard files only") {
  auto dir = temp_dir("files");
  for (auto n : {"results.jsonl", "results.shard-0-of-2.jsonl", "results.shard-1-of-2.jsonl", "run.json",
                 "results.jsonl.bak", "other.jsonl"})
    spit(dir + "/" + n, "");
  auto f = results_files(dir);
  REQUIRE(f.size() == 3);
  CHECK(fs::path(f[0]).filename() == "results.jsonl");
  CHECK(fs::path(f[2]).filename() == "results.shard-1-of-2.jsonl");
  CHECK(results_files(dir + "/missing").empty());
  lctx::remove_tree(dir);
}

TEST_CASE("model specs") {
  auto a = parse_model_spec("swa:checkpoints/swa-tiny/");
  CHECK(a.kind == "swa");
  CHECK(a.path == "checkpoints/swa-tiny/");
  CHECK(a.name == "swa-tiny");
  CHECK(a.builtin());
  auto b = parse_model_spec("openai:http://127.0.0.1:8000/v1#llama-3-8b");
  CHECK(b.kind == "openai");
  CHECK(b.url == "http://127.0.0.1:8000/v1");
  CHECK(b.name == "llama-3-8b");
  CHECK(!b.builtin());
  REQUIRE_THROWS_WITH(parse_model_spec("gpt:foo"), lctx_test::Contains("unknown kind 'gpt'"));
  REQUIRE_THROWS_WITH(parse_model_spec("checkpoint"), lctx_test::Contains("expected hsa:PATH"));
  REQUIRE_THROWS_WITH(parse_model_spec("openai:http://h:1/v1"), lctx_test::Contains("#MODEL"));
  REQUIRE_THROWS_WITH(parse_model_spec("openai:ftp://h#m"), lctx_test::Contains("http://"));
  REQUIRE_THROWS_WITH(parse_model_spec("hsa:a|b"), lctx_test::Contains("'|'"));
}

TEST_CASE("model specs: every kind of models::model_kinds() is a built-in --model and a grid axis") {
  const auto kinds = lctx::models::model_kinds();
  REQUIRE(kinds.size() >= 2);
  GridSpec g;
  for (const auto& k : kinds) {
    INFO(k);
    auto m = parse_model_spec(k + ":ck/" + k + "-tiny");
    CHECK(m.kind == k);
    CHECK(m.path == "ck/" + k + "-tiny");
    CHECK(m.name == k + "-tiny");
    CHECK(m.builtin());
    g.models.push_back(m.spec);
  }
  g.suite = "ruler";
  g.tasks = {"vt"};
  g.lengths = {512};
  g.samples = 2;
  auto items = build_grid(g);
  REQUIRE(items.size() == 2 * kinds.size());
  std::set<size_t> models_seen;
  for (auto& it : items) models_seen.insert(it.model);
  CHECK(models_seen.size() == kinds.size());
  // The refusal names every kind.
  try {
    parse_model_spec("nokind:foo");
    FAIL("nokind accepted");
  } catch (const lctx::Error& e) {
    for (const auto& k : kinds) CHECK(std::string(e.what()).find(k + ":PATH") != std::string::npos);
  }
}

TEST_CASE("grid, depths and shards") {
  GridSpec g;
  g.models = {"swa:a", "mamba:b"};
  g.suite = "ruler";
  g.tasks = {"niah_single_1", "vt"};
  g.lengths = {1024, 512};
  g.depths = {0, 50, 100};
  g.depth_tasks = {"niah_single_1"};
  g.samples = 3;
  g.seed = 9;
  auto grid = build_grid(g);
  // per model: niah 2 lengths x 3 depths x 3 + vt 2 lengths x 1 x 3 = 24
  REQUIRE(grid.size() == 48);
  CHECK(grid.front().key == "swa:a|ruler|niah_single_1|1024|0|0|9");
  CHECK(grid.back().key == "mamba:b|ruler|vt|512||2|9");
  std::set<std::string> all;
  for (auto& it : grid) all.insert(it.key);
  CHECK(all.size() == grid.size());

  for (int n : {1, 2, 3, 7, 100}) {
    std::set<std::string> seen;
    size_t total = 0;
    for (int i = 0; i < n; ++i) {
      auto part = shard_items(grid, i, n);
      total += part.size();
      for (auto& it : part) seen.insert(it.key);
      if (n <= 48) CHECK(part.size() >= 48 / n);  // round-robin: balanced
    }
    CHECK(total == grid.size());
    CHECK(seen == all);
  }
  // Membership does not depend on the command-line order of the axes.
  GridSpec h = g;
  std::reverse(h.models.begin(), h.models.end());
  std::reverse(h.tasks.begin(), h.tasks.end());
  std::reverse(h.lengths.begin(), h.lengths.end());
  for (int i = 0; i < 3; ++i) {
    std::set<std::string> a, b;
    for (auto& it : shard_items(grid, i, 3)) a.insert(it.key);
    for (auto& it : shard_items(build_grid(h), i, 3)) b.insert(it.key);
    CHECK(a == b);
  }
  CHECK(parse_shard("0/1") == std::make_pair(0, 1));
  CHECK(parse_shard("3/8") == std::make_pair(3, 8));
  for (auto bad : {"8/8", "-1/2", "1", "a/b", "1/0", "1/2x"})
    REQUIRE_THROWS_WITH(parse_shard(bad), lctx_test::Contains("expected i/N"));
}

TEST_CASE("progress durations") {
  CHECK(Progress::format_duration(5) == "5s");
  CHECK(Progress::format_duration(65) == "1:05");
  CHECK(Progress::format_duration(3725) == "1:02:05");
  CHECK(Progress::format_duration(-1) == "?");
}
