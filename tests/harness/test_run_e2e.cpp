// End to end with the real binary and a tiny untrained SWA checkpoint built here: `lctx run` (records,
// resume, kill -9 at any moment, shards, settings and tokenizer checks) and `lctx serve` + `lctx run
// --model openai:...` giving the same predictions as the built-in path.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "harness/results.hpp"
#include "models/model.hpp"
#include "core/paths.hpp"
#include "core/files.hpp"
#include "tasks/tokenizer.hpp"
#include "tests/catch.hpp"
#include "tests/harness/proc.hpp"

using nlohmann::json;
namespace fs = std::filesystem;
using lctx_test::Proc;
using lctx_test::read_text;
using lctx_test::run_cmd;

namespace {

std::string g_root;  // per-process temp root

const std::string& root() {
  if (g_root.empty()) {
    g_root = (fs::temp_directory_path() / ("lctx-e2e-" + std::to_string(::getpid()))).string();
    lctx::remove_tree(g_root);
    fs::create_directories(g_root);
  }
  return g_root;
}

// A tiny untrained SWA model, saved once per test process (deterministic weights).
const std::string& tiny_checkpoint() {
  static std::string dir;
  if (dir.empty()) {
    dir = root() + "/swa-tiny";
    torch::manual_seed(1234);
    auto m = lctx::models::build_model(
        json{{"kind", "swa"}, {"preset", "tiny"}, {"d_model", 64}, {"n_layers", 2}, {"n_heads", 2}, {"window", 64}});
    auto tok = lctx::Tokenizer::load(lctx::default_tokenizer_path());
    lctx::models::save_checkpoint(dir, *m, json{{"tokenizer_hash", tok->hash()}});
  }
  return dir;
}

std::vector<std::string> run_args(const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {lctx_test::lctx_bin(), "run", "--model", "swa:" + tiny_checkpoint(),
                                "--suite", "ruler", "--tasks", "niah_single_1,niah_single_2",
                                "--lengths", "512,1k", "--depths", "10,90", "--samples", "3",
                                "--max-new", "6", "--seed", "7", "--out", out};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}
constexpr size_t kGrid = 2 * 2 * 2 * 3;  // tasks x lengths x depths x samples

const std::set<std::string> kTiming = {"prefill_s", "decode_s", "tokens_per_s", "peak_device_mb",
                                       "peak_host_mb", "time", "shard"};

// key -> record without timing fields; REQUIREs that no key appears twice.
std::map<std::string, json> load_all(const std::string& dir) {
  std::map<std::string, json> out;
  for (auto& f : lctx::harness::results_files(dir))
    for (auto& r : lctx::harness::read_records(f)) {
      auto key = r["key"].get<std::string>();
      INFO("duplicate key " << key);
      REQUIRE(out.count(key) == 0);
      for (auto& t : kTiming) r.erase(t);
      out[key] = r;
    }
  return out;
}

size_t count_lines(const std::string& path) {
  auto s = read_text(path);
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

std::map<std::string, json>& reference_run() {
  static std::map<std::string, json> ref;
  if (ref.empty()) {
    std::string dir = root() + "/ref", err;
    int rc = run_cmd(run_args(dir, {"-q"}), root(), nullptr, &err);
    INFO(err);
    REQUIRE(rc == 0);
    ref = load_all(dir);
  }
  return ref;
}

}  // namespace

TEST_CASE("run: one record per grid item, in the documented schema") {
  auto& ref = reference_run();
  REQUIRE(ref.size() == kGrid);
  std::string dir = root() + "/ref";
  auto recs = lctx::harness::read_records(dir + "/results.jsonl");
  REQUIRE(recs.size() == kGrid);
  for (auto& r : recs) {
    CHECK(r["schema"] == "lctx.result/1");
    CHECK(r["model"] == "swa:" + tiny_checkpoint());
    CHECK(r["model_name"] == "swa-tiny");
    CHECK(r["suite"] == "ruler");
    CHECK(r["seed"] == 7);
    CHECK(r["depth"].is_number());
    CHECK(r["prompt_tokens"].get<int64_t>() <= r["length"].get<int64_t>());
    CHECK(r["prompt_tokens"].get<int64_t>() > r["length"].get<int64_t>() / 2);
    CHECK(r["completion_tokens"].get<int64_t>() <= 6);
    CHECK(r["score"].get<double>() >= 0.0);
    CHECK(r["score"].get<double>() <= 1.0);
    // An untrained model: its first 6 tokens are not the 8-token answer, or the budget ended first.
    REQUIRE(r.contains("teacher_forced"));
    CHECK((r["teacher_forced"].is_null() || r["teacher_forced"] == 0.0));
    CHECK(r["reference"].is_array());
    CHECK(r["metric"] == "string_match_all");
    CHECK(r["prefill_s"].get<double>() > 0);
    CHECK(r["decode_s"].get<double>() >= 0);
    CHECK(r["tokens_per_s"].get<double>() > 0);
    CHECK(r["prefill_path"] == "pruned");
    // the test checkpoint: 2 layers of window 64 compute 64 + 1 positions under pruning
    CHECK(r["prefill_upper_positions"].get<int64_t>() == 65);
    CHECK(r["prefill_upper_positions"].get<int64_t>() > 0);
    CHECK(r["peak_host_mb"].get<double>() > 0);
    CHECK(r["device"] == "cpu");
    CHECK(r["shard"] == "0/1");
    CHECK(r["key"] == lctx::harness::result_key(r["model"], r["suite"], r["task"], r["length"],
                                                r["depth"].get<double>(), r["index"], r["seed"]));
  }
  auto run = json::parse(read_text(dir + "/run.json"));
  CHECK(run["settings"]["max_new"] == 6);
  CHECK(run["grid"]["samples"] == 3);
}

TEST_CASE("run: a second identical run writes nothing") {
  reference_run();
  std::string dir = root() + "/ref", out;
  auto before = read_text(dir + "/results.jsonl");
  REQUIRE(run_cmd(run_args(dir, {"-q"}), root(), &out) == 0);
  CHECK(out.find("24 already done, 0 written") != std::string::npos);
  CHECK(read_text(dir + "/results.jsonl") == before);
}

TEST_CASE("run: kill -9 at any moment, then resume: same records, no duplicates") {
  auto& ref = reference_run();
  std::string dir = root() + "/killed";
  lctx::remove_tree(dir);
  // Kill repeatedly at different moments (early, after a few records, between and during writes).
  int kills = 0;
  for (int round = 0; round < 12 && kills < 4; ++round) {
    auto p = Proc::spawn(run_args(dir, {"-q"}), root() + "/k.out", root() + "/k.err");
    size_t before = fs::exists(dir + "/results.jsonl") ? count_lines(dir + "/results.jsonl") : 0;
    // wait for 1-3 new records, then a few more milliseconds, then SIGKILL
    size_t want = before + 1 + static_cast<size_t>(round % 3);
    auto t0 = std::chrono::steady_clock::now();
    while (p.running() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
      if (fs::exists(dir + "/results.jsonl") && count_lines(dir + "/results.jsonl") >= want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(3 * round));
    if (!p.running()) break;  // finished before we could kill it
    p.kill9();
    ++kills;
    auto partial = load_all(dir);  // never corrupt, never duplicated
    CHECK(partial.size() < kGrid);
  }
  CHECK(kills >= 2);
  // Simulate a kill in the middle of a write: a torn last line.
  {
    std::ofstream f(dir + "/results.jsonl", std::ios::app | std::ios::binary);
    f << "{\"schema\":\"lctx.result/1\",\"key\":\"torn";
  }
  std::string err;
  REQUIRE(run_cmd(run_args(dir), root(), nullptr, &err) == 0);
  CHECK(err.find("dropped an incomplete last record") != std::string::npos);
  auto got = load_all(dir);
  CHECK(got.size() == kGrid);
  CHECK(count_lines(dir + "/results.jsonl") == kGrid);
  CHECK(got == ref);
}

TEST_CASE("run: shards cover the grid exactly and give the same records") {
  auto& ref = reference_run();
  std::string dir = root() + "/sharded";
  for (int i = 0; i < 3; ++i)
    REQUIRE(run_cmd(run_args(dir, {"-q", "--shard", std::to_string(i) + "/3"}), root()) == 0);
  CHECK(fs::exists(dir + "/results.shard-0-of-3.jsonl"));
  CHECK(fs::exists(dir + "/run.shard-2-of-3.json"));
  CHECK(count_lines(dir + "/results.shard-1-of-3.jsonl") == kGrid / 3);
  auto got = load_all(dir);
  CHECK(got == ref);
  // An unsharded re-run into the same folder finds everything done.
  std::string out;
  REQUIRE(run_cmd(run_args(dir, {"-q"}), root(), &out) == 0);
  CHECK(out.find("0 written") != std::string::npos);
}

TEST_CASE("run: seeds coexist in one folder; other settings are refused") {
  reference_run();
  std::string dir = root() + "/seeds";
  lctx::remove_tree(dir);
  auto a = run_args(dir, {"-q", "--samples", "1"});
  REQUIRE(run_cmd(a, root()) == 0);
  auto b = a;
  b[std::find(b.begin(), b.end(), "--seed") - b.begin() + 1] = "8";
  REQUIRE(run_cmd(b, root()) == 0);
  auto recs = load_all(dir);
  CHECK(recs.size() == 2 * kGrid / 3);
  std::string err;
  auto c = a;
  c[std::find(c.begin(), c.end(), "--max-new") - c.begin() + 1] = "9";
  CHECK(run_cmd(c, root(), nullptr, &err) == 1);
  CHECK(err.find("holds results made with other settings (max_new 6 vs 9)") != std::string::npos);
}

TEST_CASE("run: a checkpoint retrained under the same path is refused on resume") {
  std::string ck = root() + "/swa-retrained";
  lctx::remove_tree(ck);
  fs::create_directories(ck);
  for (const char* f : {"config.json", "model.safetensors"})
    fs::copy_file(fs::path(tiny_checkpoint()) / f, fs::path(ck) / f);
  std::string dir = root() + "/retrained";
  lctx::remove_tree(dir);
  auto a = run_args(dir, {"-q", "--samples", "1"});
  a[std::find(a.begin(), a.end(), "--model") - a.begin() + 1] = "swa:" + ck;
  REQUIRE(run_cmd(a, root()) == 0);
  REQUIRE(run_cmd(a, root()) == 0);  // same weights: resumes
  // other weights, same path and config
  torch::manual_seed(99);
  auto m = lctx::models::build_model(
      json{{"kind", "swa"}, {"preset", "tiny"}, {"d_model", 64}, {"n_layers", 2}, {"n_heads", 2}, {"window", 64}});
  auto tok = lctx::Tokenizer::load(lctx::default_tokenizer_path());
  lctx::models::save_checkpoint(ck, *m, json{{"tokenizer_hash", tok->hash()}});
  std::string err;
  CHECK(run_cmd(a, root(), nullptr, &err) == 1);
  CHECK(err.find("made with other weights (checkpoint fingerprint") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') <= 1);
}

TEST_CASE("run: clear errors for a tokenizer mismatch and bad options") {
  std::string bad = root() + "/swa-badtok";
  lctx::remove_tree(bad);
  fs::create_directories(bad);
  auto cfg = json::parse(read_text(tiny_checkpoint() + "/config.json"));
  cfg["tokenizer_hash"] = "0123456789abcdef";
  lctx::write_file_atomic(bad + "/config.json", cfg.dump());
  fs::copy_file(tiny_checkpoint() + "/model.safetensors", bad + "/model.safetensors");
  std::string err;
  auto a = run_args(root() + "/badtok", {"-q"});
  a[3] = "swa:" + bad;
  CHECK(run_cmd(a, root(), nullptr, &err) == 1);
  CHECK(err.find("was trained with tokenizer 0123456789abcdef") != std::string::npos);
  a[3] = "mamba:" + tiny_checkpoint();
  CHECK(run_cmd(a, root(), nullptr, &err) == 1);
  CHECK(err.find("is a 'swa' model") != std::string::npos);
  auto b = run_args(root() + "/badopt", {"--shard", "3/3"});
  CHECK(run_cmd(b, root(), nullptr, &err) == 1);
  CHECK(err.find("bad --shard") != std::string::npos);
  auto c = run_args(root() + "/badopt", {"--depths", "120"});
  CHECK(run_cmd(c, root(), nullptr, &err) == 1);
  CHECK(err.find("bad --depths") != std::string::npos);
}

#ifdef LCTX_HAVE_HTTPLIB
TEST_CASE("serve + run --model openai: the same predictions as the built-in path") {
  auto& ref = reference_run();
  auto srv = Proc::spawn({lctx_test::lctx_bin(), "serve", "--model", "swa:" + tiny_checkpoint(), "--port", "0"},
                         root() + "/serve.out", root() + "/serve.err");
  std::string url;
  for (int i = 0; i < 3000 && url.empty() && srv.running(); ++i) {
    auto s = read_text(root() + "/serve.out");
    auto p = s.find("http://");
    auto e = s.find('\n', p == std::string::npos ? 0 : p);
    if (p != std::string::npos && e != std::string::npos) url = s.substr(p, e - p);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  INFO(read_text(root() + "/serve.err"));
  REQUIRE(!url.empty());
  for (bool chat : {false, true}) {
    std::string dir = root() + (chat ? "/remote-chat" : "/remote");
    auto a = run_args(dir, {"-q", "--concurrency", "3", "--timeout", "60"});
    a[3] = "openai:" + url + "#swa-tiny";
    if (chat) a.push_back("--chat");
    std::string err;
    int rc = run_cmd(a, root(), nullptr, &err);
    INFO(err);
    REQUIRE(rc == 0);
    auto got = load_all(dir);
    REQUIRE(got.size() == kGrid);
    for (auto& [key, r] : ref) {
      std::string rkey = key.substr(key.find('|'));  // same grid, different model spec
      auto it = std::find_if(got.begin(), got.end(), [&](auto& kv) { return kv.first.substr(kv.first.find('|')) == rkey; });
      REQUIRE(it != got.end());
      CHECK(it->second["prediction"] == r["prediction"]);
      CHECK(it->second["score"] == r["score"]);
      CHECK(it->second["device"] == "remote");
      CHECK(it->second["server_prompt_tokens"] == r["prompt_tokens"]);
    }
  }
}
#endif

TEST_CASE("run: --full-prefill writes the same predictions and scores as the default pruned prefill") {
  auto& ref = reference_run();
  std::string dir = root() + "/full-prefill", err;
  int rc = run_cmd(run_args(dir, {"-q", "--full-prefill"}), root(), nullptr, &err);
  INFO(err);
  REQUIRE(rc == 0);
  auto full = load_all(dir);
  REQUIRE(full.size() == ref.size());
  for (auto& [key, r] : full) {
    INFO(key);
    REQUIRE(ref.count(key));
    CHECK(r["prefill_path"] == "full");
    CHECK(r["prefill_upper_positions"] == 2 * r["prompt_tokens"].get<int64_t>());
    CHECK(ref.at(key)["prefill_upper_positions"].get<int64_t>() < r["prefill_upper_positions"].get<int64_t>());
    auto a = r, b = ref.at(key);
    for (auto* f : {"prefill_path", "prefill_upper_positions"}) {
      a.erase(f);
      b.erase(f);
    }
    CHECK(a == b);  // prediction, score, completion_tokens, finish_reason ... all equal
  }
  auto run = json::parse(read_text(dir + "/run.json"));
  CHECK(run["prefill"] == "full");
}

TEST_CASE("run: every kind of models::model_kinds() runs, and run.json holds the command line") {
  auto tok = lctx::Tokenizer::load(lctx::default_tokenizer_path());
  for (const std::string& kind : lctx::models::model_kinds()) {
    INFO(kind);
    const std::string ck = root() + "/kind-" + kind, out = root() + "/kind-run-" + kind;
    torch::manual_seed(5);
    auto m = lctx::models::build_model(json{{"kind", kind}, {"preset", "tiny"}});
    lctx::models::save_checkpoint(ck, *m, json{{"tokenizer_hash", tok->hash()}});
    const std::vector<std::string> a = {lctx_test::lctx_bin(), "run", "--model", kind + ":" + ck, "--tasks",
                                        "niah_single_1", "--lengths", "512", "--samples", "1", "--max-new", "2",
                                        "-q", "--out", out};
    std::string err;
    REQUIRE(run_cmd(a, root(), nullptr, &err) == 0);
    auto recs = lctx::harness::read_records(out + "/results.jsonl");
    REQUIRE(recs.size() == 1);
    CHECK(recs[0]["model"] == kind + ":" + ck);
    auto run = json::parse(read_text(out + "/run.json"));
    CHECK(run["argv"] == json(a));
    CHECK(run["device"] == "cpu");
  }
}
