#include "harness/run.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string_view>
#include <thread>
#include <vector>

#include "harness/builtin.hpp"
#include "harness/grid.hpp"
#include "harness/memory.hpp"
#include "harness/openai.hpp"
#include "harness/progress.hpp"
#include "harness/results.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "core/lengths.hpp"
#include "core/hash.hpp"
#include "core/files.hpp"
#include "core/version.hpp"
#include "models/model.hpp"
#include "tasks/catalog.hpp"
#include "tasks/metrics.hpp"
#include "tasks/sample.hpp"

namespace lctx::harness {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string iso_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string abs_or_empty(const std::string& p) {
  if (p.empty()) return "";
  std::error_code ec;
  auto a = fs::absolute(p, ec);
  return ec ? p : a.lexically_normal().string();
}

std::string file_hash_or_empty(const std::string& p) {
  if (p.empty()) return "";
  return hex64(fnv1a64(read_file(p)));
}

double mb(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

json opt_num(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

struct Context {
  const RunOptions& opt;
  std::string shard_text;
  std::string tokenizer_hash;
  int max_new_override;
  const Tokenizer* tokenizer = nullptr;
};

// The answer ids of teacher forcing: those of training rows (harness/train_data): the references joined by
// ", " (BABILong: the target), encoded after the answer prefix; a generator's own `answer_ids` when it has
// them (niah_single_ids).
json teacher_forced(const Context& cx, const Sample& s, const Completion& c) {
  if (!c.tokens || !cx.tokenizer) return nullptr;
  std::vector<int32_t> ans;
  if (s.meta.contains("answer_ids") && s.meta["answer_ids"].is_array()) {
    ans = s.meta["answer_ids"].get<std::vector<int32_t>>();
  } else {
    std::string a = s.target;
    if (a.empty())
      for (size_t i = 0; i < s.outputs.size(); ++i) a += (i ? ", " : "") + s.outputs[i];
    ans = cx.tokenizer->encode(a);
  }
  auto m = teacher_forced_match(*c.tokens, ans, c.finish_reason == "stop");
  return m ? json(*m ? 1.0 : 0.0) : json(nullptr);
}

// The record of one finished item (docs/results-schema.md).
json make_record(const Context& cx, const ModelSpec& m, const GridItem& it, const Sample& s, const Completion& c,
                 const std::string& device) {
  std::string pred = trim(c.text);
  double score = score_prediction(s.metric, pred, s.outputs, s.question, s.task);
  json r;
  r["schema"] = kResultSchema;
  r["key"] = it.key;
  r["model"] = m.spec;
  r["model_name"] = m.name;
  r["suite"] = it.suite;
  r["task"] = it.task;
  r["length"] = it.length;
  r["depth"] = it.depth ? json(*it.depth) : json(nullptr);
  r["index"] = it.index;
  r["seed"] = it.seed;
  r["prediction"] = pred;
  r["reference"] = s.outputs;
  r["metric"] = s.metric;
  r["score"] = score;
  r["teacher_forced"] = teacher_forced(cx, s, c);
  r["prompt_tokens"] = s.prompt_tokens;
  r["completion_tokens"] = c.completion_tokens >= 0 ? json(c.completion_tokens) : json(nullptr);
  r["max_new"] = cx.max_new_override > 0 ? cx.max_new_override : s.tokens_to_generate;
  r["finish_reason"] = c.finish_reason;
  if (c.server_prompt_tokens) r["server_prompt_tokens"] = *c.server_prompt_tokens;
  r["prefill_s"] = c.prefill_s;
  r["decode_s"] = opt_num(c.decode_s);
  r["tokens_per_s"] = c.prefill_s > 0 ? json(static_cast<double>(s.prompt_tokens) / c.prefill_s) : json(nullptr);
  r["prefill_path"] = c.prefill_path ? json(*c.prefill_path) : json(nullptr);
  r["prefill_upper_positions"] = c.prefill_upper_positions ? json(*c.prefill_upper_positions) : json(nullptr);
  r["peak_device_mb"] = opt_num(c.peak_device_mb);
  int64_t hwm = host_peak_rss_bytes();
  r["peak_host_mb"] = hwm > 0 ? json(mb(hwm)) : json(nullptr);
  r["device"] = device;
  if (c.attempts > 1) r["attempts"] = c.attempts;
  r["tokenizer_hash"] = cx.tokenizer_hash;
  r["lctx_version"] = version_string();
  r["git_hash"] = git_hash();
  r["shard"] = cx.shard_text;
  r["time"] = iso_now();
  return r;
}

}  // namespace

std::optional<bool> teacher_forced_match(const std::vector<int32_t>& generated, const std::vector<int32_t>& answer,
                                         bool stopped) {
  for (size_t j = 0; j < answer.size(); ++j) {
    if (j >= generated.size()) return stopped ? std::optional<bool>(false) : std::nullopt;
    if (generated[j] != answer[j]) return false;
  }
  return true;
}

std::string checkpoint_fingerprint(const std::string& dir) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char* name : {"config.json", "model.safetensors"}) {
    const std::string p = (fs::path(dir) / name).string();
    std::FILE* f = std::fopen(p.c_str(), "rb");
    if (!f) throw Error("cannot read " + p);
    std::vector<char> buf(1 << 20);
    size_t got = 0;
    while ((got = std::fread(buf.data(), 1, buf.size(), f)) > 0) h = fnv1a64(std::string_view(buf.data(), got), h);
    std::fclose(f);
    h = fnv1a64(name, h);
  }
  return hex64(h);
}

json run_settings(const RunOptions& opt, const std::string& tokenizer_hash) {
  return json{{"tokenizer_hash", tokenizer_hash},
              {"templates", file_hash_or_empty(opt.in.templates)},
              {"haystack", abs_or_empty(opt.in.haystack)},
              {"qa_data", abs_or_empty(opt.in.qa_data)},
              {"max_new", opt.max_new},
              {"chat", opt.chat}};
}

RunPlan plan_run(const RunOptions& opt) {
  if (opt.models.empty()) {
    std::string forms;
    for (const auto& k : models::model_kinds()) forms += k + ":PATH, ";
    throw Error("no --model given (" + forms + "or openai:URL#MODEL)");
  }
  if (opt.out.empty()) throw Error("--out DIR is required");
  if (opt.samples < 1) throw Error("--samples must be >= 1");
  if (opt.concurrency < 1) throw Error("--concurrency must be >= 1");
  if (opt.builtin.block < 0) throw Error("--block must be >= 1 (or 0: the device's default)");
  if (opt.builtin.precision != "fp32" && opt.builtin.precision != "bf16")
    throw Error("--precision must be fp32 or bf16, got '" + opt.builtin.precision + "'");
  if (opt.max_new < 0) throw Error("--max-new must be >= 0");
  if (opt.lengths.empty()) throw Error("--lengths is empty");
  if (opt.shard.count < 1 || opt.shard.index < 0 || opt.shard.index >= opt.shard.count)
    throw Error("bad --shard '" + opt.shard.str() + "': expected i/N with 0 <= i < N (e.g. 0/4)");
  suite_info(opt.in.suite);  // throws for an unknown suite
  RunPlan p;
  std::set<std::string> seen;
  for (auto& s : opt.models) {
    if (!seen.insert(s).second) throw Error("--model " + s + " is given twice");
    p.models.push_back(parse_model_spec(s));
  }
  p.tasks = expand_tasks(opt.in.suite, opt.in.tasks);

  // Resources, checkpoints, generators.
  p.res = load_resources(opt.in.tokenizer, opt.in.haystack);
  for (auto& m : p.models)
    if (m.builtin()) {
      check_checkpoint(m, *p.res.tokenizer);  // refuses a tokenizer mismatch before any sample is made
      p.wants_ids = true;
    }
  GenOptions gopt;
  gopt.seed = opt.seed;
  gopt.keep_ids = p.wants_ids;
  gopt.templates = opt.in.templates;
  gopt.qa_data = opt.in.qa_data;
  gopt.haystack_dir = opt.in.haystack;
  GridSpec gs;
  for (auto& t : p.tasks) {
    auto g = make_generator(opt.in.suite, t, p.res, gopt);
    for (auto len : opt.lengths)
      if (len < g->min_length())
        throw Error("task " + opt.in.suite + "/" + t + " needs lengths >= " + format_length(g->min_length()) +
                    " (got " + format_length(len) + ")");
    if (g->supports_depth()) gs.depth_tasks.push_back(t);
    p.generators[t] = std::move(g);
  }
  gs.models = opt.models;
  gs.suite = opt.in.suite;
  gs.tasks = p.tasks;
  gs.lengths = opt.lengths;
  gs.depths = opt.depths;
  gs.samples = opt.samples;
  gs.seed = opt.seed;
  p.items = shard_items(build_grid(gs), opt.shard.index, opt.shard.count);
  return p;
}

namespace {

// A folder without run.json (deleted, or from a copy): the settings that records carry (tokenizer_hash,
// max_new) must match this run's, or the folder would mix settings silently.
void check_records_settings(const RunOptions& opt, const std::string& tok_hash) {
  for (auto& f : results_files(opt.out)) {
    for (auto& r : read_records(f)) {
      const std::string th = r.contains("tokenizer_hash") && r["tokenizer_hash"].is_string()
                                 ? r["tokenizer_hash"].get<std::string>() : std::string();
      if (!th.empty() && th != tok_hash)
        throw Error(opt.out + " has no run.json and " + f + " holds records made with tokenizer " + th +
                    ", not this run's " + tok_hash + "; use another --out folder");
      if (!r.contains("max_new") || !r["max_new"].is_number_integer()) continue;
      int64_t want = opt.max_new;
      if (want == 0) {  // the task's tokens_to_generate
        const std::string suite = r.value("suite", std::string()), task = r.value("task", std::string());
        const SuiteInfo* si = nullptr;
        for (const SuiteInfo* s : suites())
          if (s->name == suite) si = s;
        const TaskInfo* ti = si ? si->find(task) : nullptr;
        if (!ti) continue;
        want = ti->tokens_to_generate;
      }
      if (r["max_new"].get<int64_t>() != want)
        throw Error(opt.out + " has no run.json and " + f + " holds records made with max_new " +
                    std::to_string(r["max_new"].get<int64_t>()) + ", not this run's " + std::to_string(want) +
                    "; use another --out folder");
    }
  }
}

}  // namespace

RunOutput open_output(const RunOptions& opt, const RunPlan& plan) {
  ensure_dir(opt.out);
  const int shard_i = opt.shard.index, shard_n = opt.shard.count;
  RunOutput o;
  const std::string results_path = (fs::path(opt.out) / results_file_name(shard_i, shard_n)).string();
  o.lock = std::make_unique<RunLock>(opt.out, results_path, shard_n > 1);
  const std::string tok_hash = plan.res.tokenizer->hash();
  json settings = run_settings(opt, tok_hash);
  json fingerprints = json::object();
  for (auto& m : plan.models)
    if (m.builtin()) fingerprints[m.spec] = checkpoint_fingerprint(m.path);
  json carried = json::object();
  bool had_run_file = false;
  for (auto& e : list_dir(opt.out)) {
    const std::string& name = e.name;
    if (name.rfind("run", 0) != 0 || fs::path(name).extension() != ".json" || name.find(".tmp") != std::string::npos)
      continue;
    auto prev = json::parse(read_file(e.path), nullptr, false);
    if (!prev.is_object() || !prev.contains("settings") || !prev["settings"].is_object())
      throw Error(e.path + " is not a valid run file (" +
                  (prev.is_discarded() ? std::string("not JSON") : std::string("no \"settings\" object")) +
                  "), so the settings of the results in " + opt.out +
                  " cannot be checked; delete it (the records are then checked instead) or use another --out");
    had_run_file = true;
    if (prev["settings"] != settings) {
      std::string diff;
      for (auto& [k, v] : settings.items())
        if (!prev["settings"].contains(k) || prev["settings"][k] != v)
          diff += (diff.empty() ? "" : ", ") + k + " " + prev["settings"].value(k, json()).dump() + " vs " + v.dump();
      throw Error(opt.out + " holds results made with other settings (" + diff +
                  "); use another --out folder");
    }
    if (!prev.contains("checkpoints") || !prev["checkpoints"].is_object()) continue;
    for (auto& [spec, old_fp] : prev["checkpoints"].items()) {
      if (!fingerprints.contains(spec)) {
        carried[spec] = old_fp;  // a model of an earlier run into this folder, not part of this one
      } else if (fingerprints[spec] != old_fp) {
        throw Error(opt.out + " holds results of " + spec + " made with other weights (checkpoint fingerprint " +
                    old_fp.dump() + " vs " + fingerprints[spec].dump() + "); use another --out folder");
      }
    }
  }
  if (!had_run_file) check_records_settings(opt, tok_hash);
  json run_json = {{"schema", "lctx.run/1"},
                   {"argv", opt.argv},
                   {"settings", settings},
                   {"checkpoints", [&] {
                      json all = carried;
                      all.update(fingerprints);
                      return all;
                    }()},
                   {"grid", {{"models", opt.models}, {"suite", opt.in.suite}, {"tasks", plan.tasks},
                             {"lengths", opt.lengths}, {"depths", opt.depths}, {"samples", opt.samples},
                             {"seed", opt.seed}}},
                   {"tokenizer", plan.res.tokenizer->path()},
                   {"device", opt.builtin.device.str()},
                   {"block", opt.builtin.block},
                   {"kv_offload", opt.builtin.kv_offload},
                   {"prefill", opt.builtin.prune ? "pruned" : "full"},
                   {"precision", opt.builtin.precision},
                   {"shard", opt.shard.str()},
                   {"concurrency", opt.concurrency},
                   {"timeout_s", opt.timeout_s},
                   {"retries", opt.retries},
                   {"lctx_version", version_string()},
                   {"git_hash", git_hash()},
                   {"time", iso_now()}};
  std::string run_name = shard_n > 1 ? "run.shard-" + std::to_string(shard_i) + "-of-" + std::to_string(shard_n) + ".json"
                                     : "run.json";
  write_file_atomic((fs::path(opt.out) / run_name).string(), run_json.dump(2) + "\n");

  o.store = std::make_unique<ResultStore>(results_path);
  if (o.store->truncated_bytes() > 0)  // warnings about the folder's data print under -q too
    std::fprintf(stderr, "lctx run: dropped an incomplete last record (%lld bytes) from %s\n",
                 static_cast<long long>(o.store->truncated_bytes()), o.store->path().c_str());
  for (auto& f : results_files(opt.out)) {
    std::vector<int64_t> bad;
    read_keys(f, o.done, &bad);
    // A damaged line is not a record: its item is done again, and readers skip the line (lctx report names it).
    if (!bad.empty())
      std::fprintf(stderr, "lctx: warning: %s:%lld: skipped %zu damaged line(s) (not JSON records); their items are "
                   "run again\n", f.c_str(), static_cast<long long>(bad.front()), bad.size());
  }
  return o;
}

std::unique_ptr<Backend> open_backend(const RunOptions& opt, const RunPlan& plan, const ModelSpec& m) {
  if (m.builtin()) return std::make_unique<BuiltinModel>(m, plan.res.tokenizer, opt.builtin);
  OpenAIOptions oo;
  oo.base_url = m.url;
  oo.model = m.name;
  oo.chat = opt.chat;
  oo.timeout_s = opt.timeout_s;
  oo.retries = opt.retries;
  oo.backoff_s = opt.backoff_s;
  oo.concurrency = opt.concurrency;
  return std::make_unique<OpenAIClient>(oo);
}

RunSummary execute(const RunOptions& opt, const RunPlan& plan, RunOutput& out, const BackendFactory& open) {
  const std::set<std::string>& done = out.done;
  ResultStore& store = *out.store;
  RunSummary sum;
  sum.grid = static_cast<int64_t>(plan.items.size());
  sum.results_path = store.path();
  double score_total = 0;
  std::mutex sum_mu;
  Context cx{opt, opt.shard.str(), plan.res.tokenizer->hash(), opt.max_new, plan.res.tokenizer.get()};
  Progress progress(opt.quiet);

  for (size_t mi = 0; mi < plan.models.size(); ++mi) {
    const ModelSpec& m = plan.models[mi];
    std::vector<std::vector<const GridItem*>> groups;  // execution order, grouped by (task, length)
    std::vector<int64_t> group_done;
    for (auto& it : plan.items) {
      if (it.model != mi) continue;
      if (groups.empty() || groups.back().front()->task != it.task || groups.back().front()->length != it.length) {
        groups.emplace_back();
        group_done.push_back(0);
      }
      groups.back().push_back(&it);
      if (done.count(it.key)) ++group_done.back();
    }
    int64_t todo = 0;
    for (size_t g = 0; g < groups.size(); ++g) todo += static_cast<int64_t>(groups[g].size()) - group_done[g];
    sum.skipped += static_cast<int64_t>(std::count_if(plan.items.begin(), plan.items.end(), [&](const GridItem& it) {
      return it.model == mi && done.count(it.key);
    }));
    if (todo == 0) continue;

    std::unique_ptr<Backend> backend = open ? open(m) : open_backend(opt, plan, m);
    if (!backend) throw Error("no backend for model " + m.spec);
    const std::string device = backend->device();
    const bool wants_ids = backend->wants_ids();

    for (size_t g = 0; g < groups.size(); ++g) {
      std::vector<const GridItem*> pending;
      for (auto* it : groups[g])
        if (!done.count(it->key)) pending.push_back(it);
      if (pending.empty()) continue;
      const GridItem& first = *groups[g].front();
      progress.begin("[" + m.name + "] " + first.suite + "/" + first.task + " " + format_length(first.length),
                     static_cast<int64_t>(groups[g].size()), group_done[g]);
      const TaskGenerator& gen = *plan.generators.at(first.task);
      auto make_sample = [&gen, &plan, wants_ids](const GridItem* it) {
        Sample s = gen.generate(it->length, it->index, it->depth);
        if (wants_ids && s.prompt_ids.empty()) s.prompt_ids = plan.res.tokenizer->encode_long(s.prompt_text());
        return s;
      };
      auto max_new_of = [&](const Sample& s) { return opt.max_new > 0 ? opt.max_new : s.tokens_to_generate; };

      // `parallelism` workers claim items in order; each prepares its next sample on a second thread while
      // the backend works on the current one. One worker (built-in models) keeps records in grid order.
      std::atomic<size_t> next{0};
      std::atomic<bool> stop{false};
      std::exception_ptr fatal;
      auto worker = [&]() {
        try {
          size_t k = next++;
          std::future<Sample> ahead;
          if (k < pending.size()) ahead = std::async(std::launch::async, make_sample, pending[k]);
          while (k < pending.size() && !stop) {
            Sample s = ahead.get();
            const size_t k_next = next++;
            if (k_next < pending.size()) ahead = std::async(std::launch::async, make_sample, pending[k_next]);
            bool ok = true;
            Completion c;
            try {
              c = backend->complete(s, max_new_of(s));
            } catch (const ItemFailure& e) {
              ok = false;
              std::lock_guard<std::mutex> lock(sum_mu);
              ++sum.failed;
              if (sum.first_error.empty()) sum.first_error = pending[k]->key + ": " + e.what();
            }
            if (ok) {
              json rec = make_record(cx, m, *pending[k], s, c, device);
              store.append(rec);
              std::lock_guard<std::mutex> lock(sum_mu);
              score_total += rec["score"].get<double>();
              ++sum.written;
            }
            progress.step(!ok);
            k = k_next;
          }
          if (ahead.valid()) ahead.wait();
        } catch (...) {
          std::lock_guard<std::mutex> lock(sum_mu);
          if (!fatal) fatal = std::current_exception();
          stop = true;
        }
      };
      const size_t nthreads = std::min<size_t>(static_cast<size_t>(std::max(1, backend->parallelism())), pending.size());
      std::vector<std::thread> pool;
      for (size_t t = 0; t < nthreads; ++t) pool.emplace_back(worker);
      for (auto& t : pool) t.join();
      progress.end();
      if (fatal) std::rethrow_exception(fatal);
    }
  }
  sum.mean_score = sum.written > 0 ? score_total / static_cast<double>(sum.written) : 0.0;
  return sum;
}

RunSummary run_benchmark(const RunOptions& opt) {
  RunPlan plan = plan_run(opt);
  RunOutput out = open_output(opt, plan);
  return execute(opt, plan, out);
}

}  // namespace lctx::harness
