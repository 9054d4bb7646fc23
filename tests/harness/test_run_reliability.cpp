// Hostile conditions around `lctx run`'s results folder and the options of the LibTorch commands: two runs on
// one --out, run.json deleted or garbage, a last record without its newline, a damaged middle line, and every
// numeric option of run / serve / train / train-eval given nonsense. Each case is a one-line
// "lctx: error: ..." with a non-zero exit, or a correct success; no record is lost, duplicated or interleaved.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/files.hpp"
#include "core/paths.hpp"
#include "harness/results.hpp"
#include "models/model.hpp"
#include "tasks/tokenizer.hpp"
#include "tests/catch.hpp"
#include "tests/one_line_error.hpp"
#include "tests/harness/matchers.hpp"
#include "tests/harness/proc.hpp"

using nlohmann::json;
namespace fs = std::filesystem;
using lctx_test::Proc;
using lctx_test::read_text;
using lctx_test::run_cmd;

namespace {

using lctx_test::check_one_line_error;

const std::string& root() {
  static std::string r = lctx_harness_test::temp_dir("runrel");
  return r;
}

const std::string& checkpoint() {
  static std::string dir = [] {
    const std::string d = root() + "/swa-ck";
    torch::manual_seed(4321);
    auto m = lctx::models::build_model(
        json{{"kind", "swa"}, {"preset", "tiny"}, {"d_model", 32}, {"n_layers", 1}, {"n_heads", 2}, {"window", 32}});
    auto tok = lctx::Tokenizer::load(lctx::default_tokenizer_path());
    lctx::models::save_checkpoint(d, *m, json{{"tokenizer_hash", tok->hash()}});
    return d;
  }();
  return dir;
}

std::vector<std::string> run_args(const std::string& out, int samples, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {lctx_test::lctx_bin(), "run",       "--model",  "swa:" + checkpoint(),
                                "--tasks",             "niah_single_1,niah_single_2", "--lengths", "512",
                                "--samples",           std::to_string(samples),       "--max-new", "4",
                                "--seed",              "3",         "-q",       "--out", out};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

size_t lines_of(const std::string& path) {
  const std::string s = read_text(path);
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

// key -> count over every results file of the folder.
std::map<std::string, int> key_counts(const std::string& dir) {
  std::map<std::string, int> out;
  for (auto& f : lctx::harness::results_files(dir))
    for (auto& r : lctx::harness::read_records(f)) ++out[r["key"].get<std::string>()];
  return out;
}

}  // namespace

TEST_CASE("run: two processes on one --out never duplicate or interleave records", "[run-reliability]") {
  const std::string dir = root() + "/two";
  const int samples = 24;  // 48 items: far longer than a process's start-up
  auto a = Proc::spawn(run_args(dir, samples), root() + "/a.out", root() + "/a.err");
  auto b = Proc::spawn(run_args(dir, samples), root() + "/b.out", root() + "/b.err");
  const int ra = a.wait(), rb = b.wait();
  const std::string ea = read_text(root() + "/a.err"), eb = read_text(root() + "/b.err");
  INFO("a rc " << ra << ": " << ea << "\nb rc " << rb << ": " << eb);
  // One of them ran the grid; the other was refused with one line (or, had the first finished before it
  // opened the folder, found every item done and wrote nothing).
  CHECK((ra == 0 || rb == 0));
  if (ra != 0) check_one_line_error(ra, ea, dir + " is in use by another `lctx run`");
  if (rb != 0) check_one_line_error(rb, eb, dir + " is in use by another `lctx run`");
  if (ra == 0 && rb == 0) {
    const std::string oa = read_text(root() + "/a.out"), ob = read_text(root() + "/b.out");
    CHECK((oa.find(" 0 written") != std::string::npos || ob.find(" 0 written") != std::string::npos));
  }
  auto counts = key_counts(dir);
  CHECK(counts.size() == 2u * samples);
  for (auto& [k, n] : counts) {
    INFO(k);
    CHECK(n == 1);
  }
  CHECK(lines_of(dir + "/results.jsonl") == 2u * samples);
}

TEST_CASE("run: a folder locked by another run is refused before anything is read or written",
          "[run-reliability]") {
  const std::string dir = root() + "/locked";
  REQUIRE(run_cmd(run_args(dir, 1), root()) == 0);
  const std::string before = read_text(dir + "/results.jsonl"), run_json = read_text(dir + "/run.json");
  {
    lctx::harness::RunLock held(dir, dir + "/results.jsonl", false);  // as an unsharded run in progress would
    std::string err;
    int rc = run_cmd(run_args(dir, 3), root(), nullptr, &err);
    check_one_line_error(rc, err, dir + " is in use by another `lctx run`");
    rc = run_cmd(run_args(dir, 3, {"--shard", "0/2"}), root(), nullptr, &err);  // a shard waits for it too
    check_one_line_error(rc, err, "is in use by another `lctx run`");
    CHECK(read_text(dir + "/results.jsonl") == before);
    CHECK(read_text(dir + "/run.json") == run_json);
  }
  {
    // Shards of one grid run side by side; the same shard twice does not.
    lctx::harness::RunLock shard0(dir, dir + "/results.shard-0-of-2.jsonl", true);
    std::string err;
    CHECK(run_cmd(run_args(dir, 3, {"--shard", "1/2"}), root(), nullptr, &err) == 0);
    int rc = run_cmd(run_args(dir, 3, {"--shard", "0/2"}), root(), nullptr, &err);
    check_one_line_error(rc, err, "results.shard-0-of-2.jsonl is being written by another `lctx run`");
    rc = run_cmd(run_args(dir, 3), root(), nullptr, &err);
    check_one_line_error(rc, err, "is in use by another `lctx run`");
  }
  // Released (a killed run releases it too): the folder completes, every key once.
  REQUIRE(run_cmd(run_args(dir, 3), root()) == 0);
  auto counts = key_counts(dir);
  CHECK(counts.size() == 6);
  for (auto& [k, n] : counts) CHECK(n == 1);
}

TEST_CASE("run: run.json deleted: the records' settings are checked; garbage run.json is an error",
          "[run-reliability]") {
  const std::string dir = root() + "/runjson";
  REQUIRE(run_cmd(run_args(dir, 2), root()) == 0);
  const std::string before = read_text(dir + "/results.jsonl");
  fs::remove(dir + "/run.json");
  std::string err, out;
  // Other max_new than the records': refused, nothing written.
  int rc = run_cmd(run_args(dir, 3, {"--max-new", "9"}), root(), nullptr, &err);
  check_one_line_error(rc, err, "has no run.json and " + dir + "/results.jsonl holds records made with max_new 4, "
                                "not this run's 9");
  CHECK(read_text(dir + "/results.jsonl") == before);
  // The same settings: resumes (2 done, 2 written) and writes run.json again.
  rc = run_cmd(run_args(dir, 3), root(), &out, &err);
  INFO(err);
  CHECK(rc == 0);
  CHECK(out.find("4 already done, 2 written") != std::string::npos);
  CHECK(fs::exists(dir + "/run.json"));
  // Garbage in run.json: refused by name, the file and the records left as they are.
  lctx::write_file_atomic(dir + "/run.json", "{\"schema\": \"lctx.run/1\", \"sett");
  const std::string six = read_text(dir + "/results.jsonl");
  rc = run_cmd(run_args(dir, 3), root(), nullptr, &err);
  check_one_line_error(rc, err, dir + "/run.json is not a valid run file (not JSON)");
  CHECK(read_text(dir + "/run.json") == "{\"schema\": \"lctx.run/1\", \"sett");
  CHECK(read_text(dir + "/results.jsonl") == six);
  lctx::write_file_atomic(dir + "/run.json", "[1, 2]\n");
  rc = run_cmd(run_args(dir, 3), root(), nullptr, &err);
  check_one_line_error(rc, err, "is not a valid run file (no \"settings\" object)");
}

TEST_CASE("run: a last record without its newline is kept, not redone; a damaged middle line is redone",
          "[run-reliability]") {
  const std::string dir = root() + "/newline";
  REQUIRE(run_cmd(run_args(dir, 2), root()) == 0);
  std::string text = read_text(dir + "/results.jsonl");
  REQUIRE(lines_of(dir + "/results.jsonl") == 4);
  const std::string last = text.substr(text.rfind('\n', text.size() - 2) + 1);
  // Cut the final "\n" only: the last record is whole. A re-run with another grid keeps it and completes it.
  lctx::write_file_atomic(dir + "/results.jsonl", text.substr(0, text.size() - 1));
  std::string out, err;
  int rc = run_cmd(run_args(dir, 3), root(), &out, &err);
  INFO(err);
  REQUIRE(rc == 0);
  CHECK(out.find("4 already done, 2 written") != std::string::npos);
  text = read_text(dir + "/results.jsonl");
  CHECK(text.find(last) != std::string::npos);  // kept whole, now with its newline
  CHECK(lines_of(dir + "/results.jsonl") == 6);

  // A damaged middle line: its item is done again (one warning naming FILE:LINE), the other records kept,
  // and lctx report reads the folder, skipping the damaged line by name.
  auto first_nl = text.find('\n');
  auto second_nl = text.find('\n', first_nl + 1);
  const std::string damaged =
      text.substr(0, first_nl + 1) + "{\"schema\":\"lctx.result/1\",\x01garbage" + text.substr(second_nl);
  lctx::write_file_atomic(dir + "/results.jsonl", damaged);
  rc = run_cmd(run_args(dir, 3), root(), &out, &err);
  INFO(err);
  REQUIRE(rc == 0);
  CHECK(out.find("5 already done, 1 written") != std::string::npos);
  CHECK(err.find("lctx: warning: " + dir + "/results.jsonl:2: skipped 1 damaged line(s)") != std::string::npos);
  auto counts = key_counts(dir);
  CHECK(counts.size() == 6);
  for (auto& [k, n] : counts) CHECK(n == 1);
  rc = run_cmd({lctx_test::lctx_bin(), "report", dir, "--out", root() + "/newline-report"}, root(), &out, &err);
  INFO(err);
  CHECK(rc == 0);
  CHECK(err.find(dir + "/results.jsonl:2: skipped a line that is not valid JSON") != std::string::npos);
}

TEST_CASE("run, serve, train, train-eval: nonsense numbers are one-line errors before any work",
          "[run-reliability]") {
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  const std::string ck = checkpoint(), out = root() + "/opts";
  const std::vector<std::string> run = {"run", "--model", "swa:" + ck, "--tasks", "niah_single_1", "--lengths",
                                        "512", "--out", out};
  const std::vector<std::string> serve = {"serve", "--model", "swa:" + ck, "--port", "0"};
  const std::vector<std::string> train = {"train", "--arch", "swa", "--mix", "copy:1", "--steps", "1",
                                          "--out", out + "-train"};
  const std::vector<std::string> eval = {"train-eval", "--checkpoint", ck, "--task", "niah_single_1"};
  auto with = [](std::vector<std::string> base, std::vector<std::string> extra) {
    base.insert(base.end(), extra.begin(), extra.end());
    return base;
  };
  const std::vector<Case> cases = {
      {with(run, {"--seed", "-1"}), "bad --seed '-1': expected an integer in [0, 2^63)"},
      {with(run, {"--seed", "18446744073709551615"}), "bit 63 set"},
      {with(run, {"--seed", "1e3"}), "bad --seed '1e3'"},
      {with(run, {"--samples", "99999999999"}), "--samples must be an integer in [1, 1000000], got '99999999999'"},
      {with(run, {"--samples", "0"}), "--samples must be an integer in [1, 1000000]"},
      {with(run, {"--samples", "99999999999999999999999"}), "--samples must be an integer"},
      {with(run, {"--backoff", "-1"}), "--backoff must be a finite number in [0, 3600], got '-1'"},
      {with(run, {"--backoff", "nan"}), "--backoff must be a finite number"},
      {with(run, {"--timeout", "0"}), "--timeout must be a finite number in [0.001, 86400]"},
      {with(run, {"--timeout", "inf"}), "--timeout must be a finite number"},
      {with(run, {"--retries", "-1"}), "--retries must be an integer in [0, 100]"},
      {with(run, {"--concurrency", "-1"}), "--concurrency must be an integer in [1, 1024]"},
      {with(run, {"--max-new", "-1"}), "--max-new must be an integer in [0, 1048576]"},
      {with(run, {"--max-new", "2.5"}), "--max-new must be an integer"},
      {with(run, {"--block", "-1"}), "--block must be >= 0"},
      {with(run, {"--shard", "-1/2"}), "--shard"},
      {with(run, {"--lengths", "-5"}), "bad length '-5'"},
      {with(run, {"--depths", "nan"}), "bad depth 'nan'"},
      {with(run, {"--bogus", "1"}), "--bogus"},
      {with(serve, {"--max-tokens-limit", "-1"}), "--max-tokens-limit must be an integer in [1, 1048576], got '-1'"},
      {with(serve, {"--port", "70000"}), "--port must be an integer in [0, 65535]"},
      {with(serve, {"--port", "-1"}), "--port must be an integer in [0, 65535]"},
      {with(train, {"--clip", "-1"}), "--clip must be a finite number >= 0"},
      {with(train, {"--lr", "inf"}), "--lr must be a finite number"},
      {with(train, {"--threads", "-1"}), "--threads must be an integer in [0, 1024], got '-1'"},
      {with(train, {"--context", "-1"}), "--context must be an integer in [16, "},
      {with(train, {"--prompt-weight", "nan"}), "--prompt-weight must be a finite number"},
      {with(train, {"--steps", "-3"}), "--steps must be in [1, 1e9]"},
      {with(train, {"--batch", "0"}), "--batch must be in [1, 1e6]"},
      {with(train, {"--weight-decay", "-0.1"}), "--weight-decay must be a finite number"},
      {with(train, {"--time-limit", "-5"}), "--time-limit must be >= 0"},
      {with(train, {"--seed", "-1"}), "bad --seed '-1'"},
      {with(eval, {"--first-index", "-1"}), "--first-index must be an integer in [0, "},
      {with(eval, {"--samples", "0"}), "--samples must be an integer in [1, 1000000]"},
      {with(eval, {"--threads", "-1"}), "--threads must be an integer in [0, 1024]"},
      {with(eval, {"--max-new", "-2"}), "--max-new must be an integer in [0, 1048576]"},
      {with(eval, {"--seed", "-1"}), "bad --seed '-1'"},
  };
  for (auto& c : cases) {
    std::vector<std::string> argv = {lctx_test::lctx_bin()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    std::string cmd;
    for (auto& a : c.args) cmd += a + " ";
    INFO(cmd);
    std::string err;
    const int rc = run_cmd(argv, root(), nullptr, &err);
    check_one_line_error(rc, err, c.want);
  }
  CHECK(!fs::exists(out));  // no run started
  CHECK(!fs::exists(out + "-train"));
}
