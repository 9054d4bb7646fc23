// lctx generate: write RULER / BABILong samples as JSONL (one file per suite/task/length), streaming, in
// parallel over samples with a fixed output order, atomically (FILE.tmp then rename), plus a manifest.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <optional>
#include <cstdio>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "apps/lctx/command.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "core/lengths.hpp"
#include "core/files.hpp"
#include "core/version.hpp"
#include "tasks/catalog.hpp"
#include "tasks/sample.hpp"

namespace {

struct Opts {
  std::string suite = "ruler", tasks = "all", lengths = "4k", tokenizer, haystack, templates, qa_data, depths, out;
  int64_t samples = 100;
  uint64_t seed = 42;
  int threads = 0;
  int64_t index = -1;
  bool babilong_dataset = false;
};

// Generates samples [0, n) of one (task, length, depth) with `threads` workers and hands their serialised
// records to `sink` in index order. At most `threads` samples are in flight (32M-token samples are large).
void run_ordered(const lctx::TaskGenerator& gen, int64_t length, std::optional<double> depth, int64_t first,
                 int64_t n, int threads, const std::function<void(int64_t, const lctx::Sample&, const std::string&)>& sink) {
  struct Done {
    lctx::Sample s;
    std::string line;
  };
  std::mutex m;
  std::condition_variable cv;
  std::map<int64_t, Done> ready;
  int64_t next_claim = 0, next_write = 0;
  std::exception_ptr err;
  const int64_t window = std::max(1, threads);
  auto worker = [&] {
    while (true) {
      int64_t i;
      {
        std::unique_lock<std::mutex> lk(m);
        cv.wait(lk, [&] { return err || next_claim >= n || next_claim < next_write + window; });
        if (err || next_claim >= n) return;
        i = next_claim++;
      }
      try {
        Done d;
        d.s = gen.generate(length, first + i, depth);
        d.line = gen.record(d.s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        d.line += '\n';
        std::lock_guard<std::mutex> lk(m);
        ready.emplace(i, std::move(d));
      } catch (...) {
        std::lock_guard<std::mutex> lk(m);
        if (!err) err = std::current_exception();
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  const int nt = static_cast<int>(std::min<int64_t>(std::max(1, threads), n));
  for (int t = 0; t < nt; ++t) pool.emplace_back(worker);
  try {
    while (next_write < n) {
      Done d;
      {
        std::unique_lock<std::mutex> lk(m);
        cv.wait(lk, [&] { return err || ready.count(next_write); });
        if (err) break;
        d = std::move(ready[next_write]);
        ready.erase(next_write);
      }
      sink(first + next_write, d.s, d.line);
      {
        std::lock_guard<std::mutex> lk(m);
        ++next_write;
      }
      cv.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lk(m);
    if (!err) err = std::current_exception();
  }
  cv.notify_all();
  for (auto& t : pool) t.join();
  if (err) std::rethrow_exception(err);
}

int run(const Opts& o) {
  using namespace lctx;
  auto t_start = std::chrono::steady_clock::now();
  const SuiteInfo& suite = suite_info(o.suite);  // throws for an unknown suite
  std::vector<std::string> tasks = expand_tasks(o.suite, o.tasks);
  if (tasks.empty()) throw Error("no " + o.suite + " tasks are available in this build");
  const bool explicit_all = o.tasks == "all" || o.tasks.empty();
  std::vector<int64_t> lengths = parse_lengths(o.lengths);
  std::vector<std::optional<double>> depths;
  for (double d : parse_depths(o.depths)) depths.push_back(d);
  if (depths.empty()) depths.push_back(std::nullopt);
  if (o.samples < 1) throw Error("--samples must be at least 1");
  if (o.babilong_dataset && o.suite != "babilong") throw Error("--babilong-dataset needs --suite babilong");
  const bool single = o.index >= 0;
  if (!single && o.out.empty()) throw Error("--out DIR is required (or --index I to print one sample)");
  if (!single) ensure_dir(o.out);

  GenOptions gopt;
  gopt.seed = o.seed;
  gopt.templates = o.templates;
  gopt.qa_data = o.qa_data;
  gopt.haystack_dir = o.haystack;
  Resources res = load_resources(o.tokenizer, o.haystack);

  std::vector<std::pair<std::string, std::unique_ptr<TaskGenerator>>> gens;
  std::vector<std::string> skipped;
  for (auto& t : tasks) {
    if (suite.at(t).needs == "qa-data" && o.qa_data.empty() && explicit_all) {
      skipped.push_back(t);
      continue;
    }
    gens.emplace_back(t, make_generator(o.suite, t, res, gopt));
  }
  if (!skipped.empty()) {
    std::string s;
    for (auto& t : skipped) s += (s.empty() ? "" : ", ") + t;
    std::fprintf(stderr, "lctx: skipping %s: no --qa-data given (SQuAD v2.0 dev / HotpotQA dev distractor JSON)\n", s.c_str());
  }
  for (auto& [t, g] : gens)
    for (int64_t L : lengths)
      if (L < g->min_length())
        throw Error("impossible length " + format_length(L) + " for " + o.suite + "/" + t + " (minimum " +
                    format_length(g->min_length()) + ")");
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  if (single) {
    for (auto& [t, g] : gens)
      for (int64_t L : lengths)
        for (auto& d : depths) {
          if (d && !g->supports_depth() && &d != &depths.front()) continue;
          Sample s = g->generate(L, o.index, g->supports_depth() ? d : std::nullopt);
          std::string line = g->record(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          std::fwrite(line.data(), 1, line.size(), stdout);
          std::fputc('\n', stdout);
        }
    return 0;
  }

  nlohmann::json files = nlohmann::json::array();
  for (auto& [t, g] : gens) {
    const std::string dir = o.out + "/" + o.suite + "/" + t;
    ensure_dir(dir);
    for (int64_t L : lengths) {
      for (size_t di = 0; di < depths.size(); ++di) {
        std::optional<double> d = g->supports_depth() ? depths[di] : std::nullopt;
        if (!g->supports_depth() && di > 0) continue;  // depth-free tasks get one file per length
        const std::string name = format_length(L) + (d ? "-depth" + format_depth(*d) : "") + ".jsonl";
        const std::string path = dir + "/" + name;
        auto t0 = std::chrono::steady_clock::now();
        AtomicFile out(path);
        std::unique_ptr<AtomicFile> ds;
        bool ds_first = true;
        if (o.babilong_dataset) {
          const std::string ddir = o.out + "/babilong-dataset/" + format_length(L);
          ensure_dir(ddir);
          ds = std::make_unique<AtomicFile>(ddir + "/" + t + (d ? "-depth" + format_depth(*d) : "") + ".json");
          ds->write("[\n");
        }
        int64_t tokens = 0;
        run_ordered(*g, L, d, 0, o.samples, threads, [&](int64_t i, const Sample& s, const std::string& line) {
          out.write(line);
          tokens += s.prompt_tokens;
          if (ds) {
            nlohmann::json e = {{"input", s.input}, {"question", s.question}, {"target", s.target}};
            ds->write((ds_first ? "" : ",\n") + e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
            ds_first = false;
          }
          if (L >= (int64_t(1) << 20))
            std::fprintf(stderr, "  %s/%s %s: sample %lld/%lld\n", o.suite.c_str(), t.c_str(), format_length(L).c_str(),
                         static_cast<long long>(i + 1), static_cast<long long>(o.samples));
        });
        out.commit();
        if (ds) {
          ds->write("\n]\n");
          ds->commit();
        }
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::fprintf(stderr, "%s/%s %s%s: %lld samples, %.1f MB, %.2f s\n", o.suite.c_str(), t.c_str(),
                     format_length(L).c_str(), d ? (" depth " + format_depth(*d)).c_str() : "",
                     static_cast<long long>(o.samples), double(out.bytes()) / 1e6, secs);
        nlohmann::json f = {{"path", o.suite + "/" + t + "/" + name}, {"suite", o.suite}, {"task", t}, {"length", L},
                            {"samples", o.samples}, {"bytes", out.bytes()}, {"prompt_tokens", tokens}};
        if (d) f["depth"] = *d;
        files.push_back(f);
      }
    }
  }
  nlohmann::json man = {{"lctx_version", version_string()},
                        {"git", git_hash()},
                        {"suite", o.suite},
                        {"tasks", nlohmann::json::array()},
                        {"skipped", skipped},
                        {"lengths", lengths},
                        {"samples", o.samples},
                        {"seed", o.seed},
                        {"tokenizer", {{"path", res.tokenizer->path()}, {"hash", res.tokenizer->hash()}}},
                        {"corpus", res.corpus ? res.corpus->hash() : ""},
                        {"haystack", o.haystack.empty() ? Corpus::default_dir() : o.haystack},
                        {"templates", o.templates},
                        {"qa_data", o.qa_data},
                        {"files", files}};
  for (auto& [t, g] : gens) man["tasks"].push_back(t);
  if (!o.depths.empty()) {
    nlohmann::json dj = nlohmann::json::array();
    for (auto& d : depths) dj.push_back(*d);
    man["depths"] = dj;
  }
  write_file_atomic(o.out + "/manifest.json", man.dump(2) + "\n");
  std::fprintf(stderr, "wrote %zu files to %s in %.1f s\n", files.size(), o.out.c_str(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count());
  return 0;
}

lctx::cli::Command reg("generate", [](CLI::App& app) {
  auto o = std::make_shared<Opts>();
  app.add_option("--suite", o->suite, "ruler | babilong (default ruler)");
  app.add_option("--tasks", o->tasks, "all | comma-separated task names (default all)");
  app.add_option("--lengths", o->lengths, "comma-separated target lengths in tokens: 4k,8k,...,32m (default 4k)");
  app.add_option("--samples", o->samples, "samples per task and length (default 100)");
  app.add_option("--seed", o->seed, "run seed (default 42)");
  app.add_option("--tokenizer", o->tokenizer, "SentencePiece .model used for length counting (default: lctx-8k)");
  app.add_option("--haystack", o->haystack, "folder of .txt files for essay haystacks (default data/sotu)");
  app.add_option("--templates", o->templates, "replacement prompt template JSON file");
  app.add_option("--qa-data", o->qa_data, "SQuAD v2.0 dev / HotpotQA dev distractor JSON (file or folder) for the RULER qa tasks");
  app.add_option("--depths", o->depths, "fixed needle depths in percent, e.g. 0,25,50,75,100 (one file per depth)");
  app.add_option("--threads", o->threads, "worker threads (default: all cores)");
  app.add_option("--out", o->out, "output folder: OUT/<suite>/<task>/<length>.jsonl and OUT/manifest.json");
  app.add_option("--index", o->index, "print only sample I (one JSONL line per task/length) to stdout");
  app.add_flag("--babilong-dataset", o->babilong_dataset,
               "also write OUT/babilong-dataset/<length>/<task>.json in the public dataset layout");
  return [o]() -> int { return run(*o); };
});

}  // namespace
