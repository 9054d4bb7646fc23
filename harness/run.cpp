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
              {"templates", file_hash_or_empty(opt.templates)},
              {"haystack", abs_or_empty(opt.haystack)},
              {"qa_data", abs_or_empty(opt.qa_data)},
              {"max_new", opt.max_new},
              {"chat", opt.chat}};
}

RunSummary run_benchmark(const RunOptions& opt) {
  // ---- options ------------------------------------------------------------------------------------------
  if (opt.models.empty()) throw Error("no --model given (hsa:PATH, swa:PATH, mamba:PATH or openai:URL#MODEL)");
  if (opt.out.empty()) throw Error("--out DIR is required");
  if (opt.samples < 1) throw Error("--samples must be >= 1");
  if (opt.concurrency < 1) throw Error("--concurrency must be >= 1");
  if (opt.block < 0) throw Error("--block must be >= 1 (or 0: the device's default)");
  if (opt.precision != "fp32" && opt.precision != "bf16")
    throw Error("--precision must be fp32 or bf16, got '" + opt.precision + "'");
  if (opt.max_new < 0) throw Error("--max-new must be >= 0");
  if (opt.suite != "ruler" && opt.suite != "babilong")
    throw Error("unknown suite '" + opt.suite + "' (known: ruler, babilong)");
  std::vector<ModelSpec> models;
  std::set<std::string> seen;
  for (auto& s : opt.models) {
    if (!seen.insert(s).second) throw Error("--model " + s + " is given twice");
    models.push_back(parse_model_spec(s));
  }
  auto [shard_i, shard_n] = parse_shard(opt.shard);
  auto tasks = expand_tasks(opt.suite, opt.tasks);
  auto lengths = parse_lengths(opt.lengths);
  if (lengths.empty()) throw Error("--lengths is empty");
  auto depths = parse_depths(opt.depths);

  // ---- resources, checkpoints, generators ---------------------------------------------------------------
  Resources res = load_resources(opt.tokenizer, opt.haystack);
  const std::string tok_hash = res.tokenizer->hash();
  bool any_builtin = false;
  for (auto& m : models)
    if (m.builtin()) {
      check_checkpoint(m, *res.tokenizer);  // refuses a tokenizer mismatch before any sample is made
      any_builtin = true;
    }
  GenOptions gopt;
  gopt.seed = opt.seed;
  gopt.keep_ids = any_builtin;
  gopt.templates = opt.templates;
  gopt.qa_data = opt.qa_data;
  gopt.haystack_dir = opt.haystack;
  std::map<std::string, std::unique_ptr<TaskGenerator>> gens;
  GridSpec gs;
  for (auto& t : tasks) {
    auto g = make_generator(opt.suite, t, res, gopt);
    for (auto len : lengths)
      if (len < g->min_length())
        throw Error("task " + opt.suite + "/" + t + " needs lengths >= " + format_length(g->min_length()) +
                    " (got " + format_length(len) + ")");
    if (g->supports_depth()) gs.depth_tasks.push_back(t);
    gens[t] = std::move(g);
  }
  gs.models = opt.models;
  gs.suite = opt.suite;
  gs.tasks = tasks;
  gs.lengths = lengths;
  gs.depths = depths;
  gs.samples = opt.samples;
  gs.seed = opt.seed;
  auto items = shard_items(build_grid(gs), shard_i, shard_n);

  // ---- output folder: settings check, run file, results store, completed keys ----------------------------
  ensure_dir(opt.out);
  json settings = run_settings(opt, tok_hash);
  json fingerprints = json::object();
  for (auto& m : models)
    if (m.builtin()) fingerprints[m.spec] = checkpoint_fingerprint(m.path);
  json carried = json::object();
  for (auto& e : list_dir(opt.out)) {
    const std::string& name = e.name;
    if (name.rfind("run", 0) != 0 || fs::path(name).extension() != ".json" || name.find(".tmp") != std::string::npos)
      continue;
    auto prev = json::parse(read_file(e.path), nullptr, false);
    if (!prev.is_object() || !prev.contains("settings")) continue;
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
  std::string shard_text = std::to_string(shard_i) + "/" + std::to_string(shard_n);
  json run_json = {{"schema", "lctx.run/1"},
                   {"argv", opt.argv},
                   {"settings", settings},
                   {"checkpoints", [&] {
                      json all = carried;
                      all.update(fingerprints);
                      return all;
                    }()},
                   {"grid", {{"models", opt.models}, {"suite", opt.suite}, {"tasks", tasks}, {"lengths", lengths},
                             {"depths", depths}, {"samples", opt.samples}, {"seed", opt.seed}}},
                   {"tokenizer", res.tokenizer->path()},
                   {"device", opt.device},
                   {"block", opt.block},
                   {"kv_offload", opt.kv_offload},
                   {"prefill", opt.full_prefill ? "full" : "pruned"},
                   {"precision", opt.precision},
                   {"shard", shard_text},
                   {"concurrency", opt.concurrency},
                   {"timeout_s", opt.timeout_s},
                   {"retries", opt.retries},
                   {"lctx_version", version_string()},
                   {"git_hash", git_hash()},
                   {"time", iso_now()}};
  std::string run_name = shard_n > 1 ? "run.shard-" + std::to_string(shard_i) + "-of-" + std::to_string(shard_n) + ".json"
                                     : "run.json";
  write_file_atomic((fs::path(opt.out) / run_name).string(), run_json.dump(2) + "\n");

  ResultStore store((fs::path(opt.out) / results_file_name(shard_i, shard_n)).string());
  if (store.truncated_bytes() > 0 && !opt.quiet)
    std::fprintf(stderr, "lctx run: dropped an incomplete last record (%lld bytes) from %s\n",
                 static_cast<long long>(store.truncated_bytes()), store.path().c_str());
  std::set<std::string> done;
  for (auto& f : results_files(opt.out)) read_keys(f, done);

  RunSummary sum;
  sum.grid = static_cast<int64_t>(items.size());
  sum.results_path = store.path();
  double score_total = 0;
  std::mutex sum_mu;
  Context cx{opt, shard_text, tok_hash, opt.max_new, res.tokenizer.get()};
  Progress progress(opt.quiet);

  // ---- per model, per (task, length) group ----------------------------------------------------------------
  for (size_t mi = 0; mi < models.size(); ++mi) {
    const ModelSpec& m = models[mi];
    std::vector<std::vector<const GridItem*>> groups;  // execution order, grouped by (task, length)
    std::vector<int64_t> group_done;
    for (auto& it : items) {
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
    sum.skipped += static_cast<int64_t>(std::count_if(items.begin(), items.end(), [&](const GridItem& it) {
      return it.model == mi && done.count(it.key);
    }));
    if (todo == 0) continue;

    std::unique_ptr<BuiltinModel> builtin;
    std::unique_ptr<OpenAIClient> client;
    std::string device;
    if (m.builtin()) {
      BuiltinOptions bo;
      bo.device = opt.device;
      bo.block = opt.block;
      bo.kv_offload = opt.kv_offload;
      bo.prune = !opt.full_prefill;
      bo.precision = opt.precision;
      builtin = std::make_unique<BuiltinModel>(m, res.tokenizer, bo);
      device = builtin->device_name();
    } else {
      OpenAIOptions oo;
      oo.base_url = m.url;
      oo.model = m.name;
      oo.chat = opt.chat;
      oo.timeout_s = opt.timeout_s;
      oo.retries = opt.retries;
      oo.backoff_s = opt.backoff_s;
      client = std::make_unique<OpenAIClient>(oo);
      device = "remote";
    }

    for (size_t g = 0; g < groups.size(); ++g) {
      std::vector<const GridItem*> pending;
      for (auto* it : groups[g])
        if (!done.count(it->key)) pending.push_back(it);
      if (pending.empty()) continue;
      const GridItem& first = *groups[g].front();
      progress.begin("[" + m.name + "] " + first.suite + "/" + first.task + " " + format_length(first.length),
                     static_cast<int64_t>(groups[g].size()), group_done[g]);
      const TaskGenerator& gen = *gens.at(first.task);
      auto make_sample = [&gen, &res, any_builtin](const GridItem* it) {
        Sample s = gen.generate(it->length, it->index, it->depth);
        if (any_builtin && s.prompt_ids.empty()) s.prompt_ids = res.tokenizer->encode_long(s.prompt_text());
        return s;
      };
      auto max_new_of = [&](const Sample& s) { return opt.max_new > 0 ? opt.max_new : s.tokens_to_generate; };

      if (builtin) {
        // One sample ahead is generated on a second thread while the model works on the current one.
        std::future<Sample> next = std::async(std::launch::async, make_sample, pending[0]);
        for (size_t k = 0; k < pending.size(); ++k) {
          Sample s = next.get();
          if (k + 1 < pending.size()) next = std::async(std::launch::async, make_sample, pending[k + 1]);
          Completion c = builtin->complete(s.prompt_ids, max_new_of(s));
          json rec = make_record(cx, m, *pending[k], s, c, device);
          store.append(rec);
          score_total += rec["score"].get<double>();
          ++sum.written;
          progress.step();
        }
      } else {
        std::atomic<size_t> next{0};
        std::atomic<bool> stop{false};
        std::exception_ptr fatal;
        auto worker = [&]() {
          for (;;) {
            if (stop) return;
            size_t k = next++;
            if (k >= pending.size()) return;
            try {
              Sample s = make_sample(pending[k]);
              Completion c;
              bool ok = true;
              try {
                c = client->complete(s.prompt_text(), max_new_of(s));
              } catch (const HttpError& e) {
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
            } catch (...) {
              std::lock_guard<std::mutex> lock(sum_mu);
              if (!fatal) fatal = std::current_exception();
              stop = true;
              return;
            }
          }
        };
        size_t nthreads = std::min<size_t>(static_cast<size_t>(opt.concurrency), pending.size());
        std::vector<std::thread> pool;
        for (size_t t = 0; t < nthreads; ++t) pool.emplace_back(worker);
        for (auto& t : pool) t.join();
        if (fatal) {
          progress.end();
          std::rethrow_exception(fatal);
        }
      }
      progress.end();
    }
  }
  sum.mean_score = sum.written > 0 ? score_total / static_cast<double>(sum.written) : 0.0;
  return sum;
}

}  // namespace lctx::harness
