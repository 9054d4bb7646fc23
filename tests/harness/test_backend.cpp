// The run loop (harness/run.hpp: plan_run, open_output, execute) against the Backend interface alone: a test
// backend that answers from the sample's references, with the in-flight bound, item failures (counted, retried
// by the next run) and fatal errors (stop the run, keep what was written).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include "core/error.hpp"
#include "core/files.hpp"
#include "harness/backend.hpp"
#include "harness/results.hpp"
#include "harness/run.hpp"
#include "tasks/sample.hpp"
#include "tests/catch.hpp"
#include "tests/harness/matchers.hpp"

using namespace lctx::harness;
using lctx_harness_test::temp_dir;
namespace fs = std::filesystem;

namespace {

// What the backends of a run saw; outlives them (execute owns and drops each backend).
struct Stats {
  std::atomic<int> in_flight{0}, max_in_flight{0}, calls{0}, opened{0};
};

class AnswerBackend : public Backend {
 public:
  AnswerBackend(Stats& st, int parallelism, std::function<int(const lctx::Sample&)> fault = {})
      : st_(st), parallelism_(parallelism), fault_(std::move(fault)) {
    ++st_.opened;
  }
  const std::string& name() const override { return name_; }
  std::string device() const override { return "test"; }
  bool wants_ids() const override { return false; }
  int parallelism() const override { return parallelism_; }
  // fault(sample): 0 answer, 1 ItemFailure, 2 a fatal lctx::Error.
  Completion complete(const lctx::Sample& s, int max_new) override {
    const int now = ++st_.in_flight;
    int seen = st_.max_in_flight.load();
    while (now > seen && !st_.max_in_flight.compare_exchange_weak(seen, now)) {
    }
    // With room for more than one prompt, wait (bounded) until a second one arrives: the loop must have
    // several in flight at once.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (parallelism_ > 1 && st_.max_in_flight.load() < 2 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ++st_.calls;
    const int f = fault_ ? fault_(s) : 0;
    --st_.in_flight;
    if (f == 1) throw ItemFailure("refused sample " + std::to_string(s.index));
    if (f == 2) throw lctx::Error("backend broke at sample " + std::to_string(s.index));
    Completion c;
    for (size_t i = 0; i < s.outputs.size(); ++i) c.text += (i ? " " : "") + s.outputs[i];
    c.completion_tokens = 1;
    c.finish_reason = "stop";
    c.prefill_s = 0.001;
    (void)max_new;
    return c;
  }

 private:
  Stats& st_;
  std::string name_ = "answers";
  int parallelism_;
  std::function<int(const lctx::Sample&)> fault_;
};

RunOptions options(const std::string& out) {
  RunOptions o;
  o.models = {"openai:http://127.0.0.1:9/v1#answers"};  // never contacted: the test backend stands in
  o.in.tasks = "niah_single_1,vt";
  o.lengths = {1024};
  o.samples = 4;
  o.quiet = true;
  o.out = out;
  return o;
}

RunSummary run_with(const RunOptions& o, std::function<std::unique_ptr<Backend>()> make) {
  RunPlan plan = plan_run(o);
  RunOutput out = open_output(o, plan);
  return execute(o, plan, out, [&](const ModelSpec&) { return make(); });
}

std::set<std::string> keys_of(const std::vector<nlohmann::json>& recs) {
  std::set<std::string> k;
  for (auto& r : recs) k.insert(r["key"].get<std::string>());
  return k;
}

}  // namespace

TEST_CASE("execute: any Backend runs the grid; parallelism bounds the prompts in flight") {
  for (int par : {1, 3}) {
    INFO("parallelism " << par);
    const std::string dir = temp_dir("backend-par" + std::to_string(par));
    RunOptions o = options(dir);
    Stats st;
    auto sum = run_with(o, [&] { return std::make_unique<AnswerBackend>(st, par); });
    CHECK(st.opened == 1);
    CHECK(sum.grid == 8);
    CHECK(sum.written == 8);
    CHECK(sum.failed == 0);
    CHECK(sum.mean_score == 1.0);
    if (par == 1) {
      CHECK(st.max_in_flight == 1);
    } else {
      CHECK(st.max_in_flight >= 2);
      CHECK(st.max_in_flight <= par);
    }
    auto recs = read_records(dir + "/results.jsonl");
    REQUIRE(recs.size() == 8);
    CHECK(keys_of(recs).size() == 8);
    for (auto& r : recs) {
      CHECK(r["device"] == "test");
      CHECK(r["model"] == o.models[0]);
      CHECK(r["score"] == 1.0);
      CHECK(r["prefill_path"].is_null());
    }
    lctx::remove_tree(dir);
  }
}

TEST_CASE("execute: an ItemFailure is counted and leaves no record; the next run does only those items") {
  const std::string dir = temp_dir("backend-fail");
  RunOptions o = options(dir);
  o.concurrency = 2;
  Stats st1;
  auto sum = run_with(o, [&] {
    return std::make_unique<AnswerBackend>(st1, 2, [](const lctx::Sample& s) { return s.index % 2 == 1 ? 1 : 0; });
  });
  CHECK(sum.written == 4);
  CHECK(sum.failed == 4);
  CHECK(sum.first_error.find("refused sample") != std::string::npos);
  auto first = read_records(dir + "/results.jsonl");
  REQUIRE(first.size() == 4);
  for (auto& r : first) CHECK(r["index"].get<int64_t>() % 2 == 0);

  Stats st2;
  auto again = run_with(o, [&] { return std::make_unique<AnswerBackend>(st2, 2); });
  CHECK(again.skipped == 4);
  CHECK(again.written == 4);
  CHECK(again.failed == 0);
  CHECK(st2.calls == 4);  // only the failed items were asked again
  auto all = read_records(dir + "/results.jsonl");
  REQUIRE(all.size() == 8);
  CHECK(keys_of(all).size() == 8);

  // A third run finds nothing to do and opens no backend.
  Stats st3;
  auto none = run_with(o, [&] { return std::make_unique<AnswerBackend>(st3, 2); });
  CHECK(none.skipped == 8);
  CHECK(none.written == 0);
  CHECK(st3.opened == 0);
  lctx::remove_tree(dir);
}

TEST_CASE("execute: any other exception stops the run and keeps the records already written") {
  const std::string dir = temp_dir("backend-fatal");
  RunOptions o = options(dir);
  o.in.tasks = "vt";
  Stats st;
  REQUIRE_THROWS_WITH(run_with(o, [&] {
                        return std::make_unique<AnswerBackend>(st, 1, [](const lctx::Sample& s) { return s.index == 2 ? 2 : 0; });
                      }),
                      lctx_test::Contains("backend broke at sample 2"));
  auto recs = read_records(dir + "/results.jsonl");
  REQUIRE(recs.size() == 2);  // samples 0 and 1, in grid order (one prompt at a time)
  CHECK(recs[0]["index"] == 0);
  CHECK(recs[1]["index"] == 1);
  lctx::remove_tree(dir);
}
