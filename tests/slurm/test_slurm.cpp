// Scale-out on a real scheduler: a one-node Slurm cluster on loopback (tests/slurm/cluster.sh starts and stops
// its own munged, slurmctld and slurmd; root and Debian's slurm-wlm + munge needed, as scripts/setup.sh
// installs them) runs scripts/slurm/submit.sh: a job array of `lctx run --shard i/N` tasks and a dependent
// `lctx report` job. The merged records and report must equal an unsharded run's; after one array task is
// cancelled mid-run, a second submission completes the grid with no duplicate record.
// LCTX_SKIP_SLURM=1 skips it (machines without root).
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/catch.hpp"
#include "tests/harness/proc.hpp"

using lctx_test::read_text;
using lctx_test::run_cmd;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kRoot = LCTX_SOURCE_ROOT;

std::string sh(const std::string& cmd, int* rc = nullptr) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return "";
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (rc) *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

struct Cluster {
  std::string dir;
  explicit Cluster(const std::string& d) : dir(d) {
    int rc = 0;
    auto out = sh("bash " + kRoot + "/tests/slurm/cluster.sh start " + dir, &rc);
    INFO(out);
    REQUIRE(rc == 0);
    auto conf = out.substr(0, out.find('\n'));
    ::setenv("SLURM_CONF", conf.c_str(), 1);
  }
  ~Cluster() { sh("bash " + kRoot + "/tests/slurm/cluster.sh stop " + dir); }
};

// Waits until the cluster has no job left (pending or running).
void wait_idle(int seconds) {
  auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(seconds)) {
    int rc = 0;
    auto q = sh("squeue -h -o %i", &rc);
    if (rc == 0 && q.find_first_not_of(" \n") == std::string::npos) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  FAIL("the Slurm jobs did not finish in " << seconds << " s: " << sh("squeue"));
}

const std::vector<std::string> kGrid = {"--model", "swa:" + kRoot + "/assets/checkpoints/swa-tiny", "--suite", "ruler",
                                        "--tasks", "niah_single_1,niah_single_2", "--lengths", "512,1k", "--depths", "0,50,100",
                                        "--samples", "2", "--max-new", "4", "--seed", "3", "-q"};
// 2 tasks x 2 lengths x 3 depths x 2 samples
constexpr size_t kItems = 2 * 2 * 3 * 2;

const std::set<std::string> kVolatile = {"prefill_s", "decode_s", "tokens_per_s", "peak_device_mb", "peak_host_mb",
                                         "time", "shard"};

// key -> record without its timing fields, every results*.jsonl of `dir`; counts lines (duplicates show).
std::map<std::string, json> records(const std::string& dir, size_t* lines) {
  std::map<std::string, json> out;
  *lines = 0;
  for (auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (name.rfind("results", 0) != 0 || e.path().extension() != ".jsonl") continue;
    auto text = read_text(e.path().string());
    size_t pos = 0;
    while (pos < text.size()) {
      auto nl = text.find('\n', pos);
      REQUIRE(nl != std::string::npos);  // no torn line is left behind
      auto j = json::parse(text.substr(pos, nl - pos));
      pos = nl + 1;
      ++*lines;
      for (auto& k : kVolatile) j.erase(k);
      out[j["key"].get<std::string>()] = j;
    }
  }
  return out;
}

// leaderboard.json without what differs between any two runs of the same records (timings, memory, times).
json stable(json j) {
  if (j.is_object()) {
    json o = json::object();
    for (auto& [k, v] : j.items())
      if (!kVolatile.count(k) && k != "generated") o[k] = stable(v);
    return o;
  }
  if (j.is_array()) {
    json a = json::array();
    for (auto& v : j) a.push_back(stable(v));
    return a;
  }
  return j;
}

std::pair<std::string, std::string> submit(const std::string& out, int shards) {
  std::string cmd = "LCTX_BIN=" + lctx_test::lctx_bin() + " bash " + kRoot + "/scripts/slurm/submit.sh -n " +
                    std::to_string(shards) + " -c 1 " + out + " --";
  for (auto& a : kGrid) cmd += " '" + a + "'";
  int rc = 0;
  auto ids = sh(cmd, &rc);
  INFO(cmd << "\n" << ids);
  REQUIRE(rc == 0);
  auto sp = ids.find(' ');
  REQUIRE(sp != std::string::npos);
  return {ids.substr(0, sp), ids.substr(sp + 1, ids.find('\n') - sp - 1)};
}

}  // namespace

TEST_CASE("slurm: an array job of shards plus a report job equals the unsharded run; resubmission completes a "
          "cancelled task", "[slurm]") {
  if (std::getenv("LCTX_SKIP_SLURM")) {
    WARN("LCTX_SKIP_SLURM is set: the Slurm test is skipped");
    return;
  }
  REQUIRE(::geteuid() == 0);  // slurmd runs jobs as their user; the test cluster runs as root
  const std::string root = (fs::temp_directory_path() / ("lctx-slurm-" + std::to_string(::getpid()))).string();
  fs::remove_all(root);
  fs::create_directories(root);
  const auto t0 = std::chrono::steady_clock::now();
  Cluster cluster(root + "/cluster");

  // The unsharded reference, run directly.
  std::vector<std::string> ref_args = {lctx_test::lctx_bin(), "run"};
  ref_args.insert(ref_args.end(), kGrid.begin(), kGrid.end());
  ref_args.insert(ref_args.end(), {"--out", root + "/ref"});
  std::string err;
  {
    const int rc = run_cmd(ref_args, root, nullptr, &err);
    INFO(err);
    REQUIRE(rc == 0);
  }
  REQUIRE(run_cmd({lctx_test::lctx_bin(), "report", root + "/ref", "--out", root + "/ref/report"}, root) == 0);
  size_t ref_lines = 0;
  const auto ref = records(root + "/ref", &ref_lines);
  REQUIRE(ref.size() == kItems);
  const json ref_lb = stable(json::parse(read_text(root + "/ref/report/leaderboard.json")));

  {  // three shards and a report job
    const std::string out = root + "/sharded";
    submit(out, 3);
    wait_idle(240);
    INFO(sh("cat " + out + "/slurm/*.out"));
    size_t lines = 0;
    CHECK(records(out, &lines) == ref);
    CHECK(lines == kItems);  // no duplicate
    CHECK(fs::exists(out + "/results.shard-2-of-3.jsonl"));
    REQUIRE(fs::exists(out + "/report/leaderboard.json"));
    CHECK(stable(json::parse(read_text(out + "/report/leaderboard.json"))).dump(1) == ref_lb.dump(1));
    CHECK(read_text(out + "/report/report.md").size() > 0);
  }

  {  // a task cancelled mid-run is completed by a second submission, without duplicates
    const std::string out = root + "/cancelled";
    auto [jid, rid] = submit(out, 2);
    // Cancel task 1 as soon as it has written its first record.
    const std::string f = out + "/results.shard-1-of-2.jsonl";
    bool cancelled = false;
    for (int i = 0; i < 3000 && !cancelled; ++i) {
      if (fs::exists(f) && read_text(f).find('\n') != std::string::npos) {
        sh("scancel " + jid + "_1");
        cancelled = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    REQUIRE(cancelled);
    wait_idle(240);
    size_t lines = 0;
    const auto partial = records(out, &lines);
    INFO(sh("cat " + out + "/slurm/*.out"));
    CHECK(partial.size() < kItems);               // the cancelled shard did not finish
    CHECK(!fs::exists(out + "/report/leaderboard.json"));  // and the report job never ran
    submit(out, 2);
    wait_idle(240);
    const auto full = records(out, &lines);
    CHECK(full == ref);
    CHECK(lines == kItems);  // resumed, nothing written twice
    REQUIRE(fs::exists(out + "/report/leaderboard.json"));
    CHECK(stable(json::parse(read_text(out + "/report/leaderboard.json"))).dump(1) == ref_lb.dump(1));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  WARN("slurm test: " << secs << " s");
}
