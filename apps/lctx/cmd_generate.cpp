// lctx generate: write RULER / BABILong samples as JSONL (one file per suite/task/length), streaming, in
// parallel over samples with a fixed output order, atomically (FILE.tmp then rename), plus a manifest.
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <optional>
#include <cstdio>
#include <cstring>
#include <malloc.h>
#include <string_view>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "apps/lctx/command.hpp"
#include "apps/lctx/options.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "core/lengths.hpp"
#include "core/files.hpp"
#include "core/version.hpp"
#include "tasks/catalog.hpp"
#include "tasks/sample.hpp"

namespace {

struct Opts {
  lctx::TaskInputs in;
  std::vector<int64_t> lengths = {4096};
  std::vector<double> depths;
  std::string out;
  int64_t samples = 100;
  uint64_t seed = 42;
  int threads = 0;
  int64_t index = -1;
  std::string layout = "lctx";
};

// BABILong's names of lengths: 0k, 1k, ..., 512k, 1M, 2M, ... (lctx lengths are 2^10 and 2^20 multiples).
std::string babilong_length_name(int64_t n) {
  if (n == 0) return "0k";
  if (n % (int64_t(1) << 20) == 0) return std::to_string(n >> 20) + "M";
  if (n % 1024 == 0) return std::to_string(n >> 10) + "k";
  return std::to_string(n);
}

// Appends the JSON literal of `s` exactly as nlohmann's dump (ensure_ascii off) writes a valid UTF-8 string,
// in one pass that copies runs of plain bytes eight at a time; returns false, having appended nothing, when
// `s` is not valid UTF-8 (nlohmann's replacement rules then apply).
bool append_json_string(std::string& out, std::string_view s) {
  const size_t start = out.size();
  out.reserve(start + s.size() + s.size() / 16 + 2);
  out += '"';
  const unsigned char* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char* e = p + s.size();
  auto special8 = [](uint64_t v) {  // a byte < 0x20, == '"', == '\\' or >= 0x80
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    auto zero = [&](uint64_t x) { return (x - ones) & ~x & high; };
    return ((v - ones * 0x20) & ~v & high) | zero(v ^ (ones * 0x22)) | zero(v ^ (ones * 0x5C)) | (v & high);
  };
  while (p < e) {
    const unsigned char* run = p;
#if defined(__SSE2__)
    // Sixteen bytes at a time: a signed byte below 0x20 is a control byte or one >= 0x80.
    const __m128i space = _mm_set1_epi8(0x20), quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    while (e - p >= 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i sp = _mm_or_si128(_mm_cmplt_epi8(v, space), _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)));
      const int mask = _mm_movemask_epi8(sp);
      if (mask) {
        p += __builtin_ctz(static_cast<unsigned>(mask));
        break;
      }
      p += 16;
    }
#endif
    while (e - p >= 8) {
      uint64_t v;
      std::memcpy(&v, p, 8);
      if (special8(v)) break;
      p += 8;
    }
    while (p < e && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80) ++p;
    out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
    if (p == e) break;
    const unsigned char c = *p;
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\t': out += "\\t"; break;
        case '\n': out += "\\n"; break;
        case '\f': out += "\\f"; break;
        case '\r': out += "\\r"; break;
        default: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        }
      }
      ++p;
      continue;
    }
    // A multi-byte sequence: well-formed per Unicode (no overlongs, surrogates or code points past U+10FFFF).
    size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    bool ok = n != 0 && static_cast<size_t>(e - p) >= n;
    for (size_t i = 1; ok && i < n; ++i) ok = (p[i] & 0xC0) == 0x80;
    if (ok && n == 3) ok = !(c == 0xE0 && p[1] < 0xA0) && !(c == 0xED && p[1] > 0x9F);
    if (ok && n == 4) ok = !(c == 0xF0 && p[1] < 0x90) && !(c == 0xF4 && p[1] > 0x8F);
    if (!ok) {
      out.resize(start);
      return false;
    }
    out.append(reinterpret_cast<const char*>(p), n);
    p += n;
  }
  out += '"';
  return true;
}

// A record as nlohmann's compact dump writes it (keys in order), with long strings through append_json_string.
// input: when not null, the value of the key "input" (whatever r holds there), so that a long prompt is not
// copied into the JSON value first.
std::string dump_record(const nlohmann::json& r, const std::string* input = nullptr) {
  const auto dump = [](const nlohmann::json& v) { return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); };
  if (!r.is_object()) return dump(r);
  std::string out = "{";
  if (input) out.reserve(input->size() + input->size() / 64 + 65536);
  bool first = true;
  for (auto it = r.begin(); it != r.end(); ++it) {
    if (!first) out += ',';
    first = false;
    out += dump(nlohmann::json(it.key()));
    out += ':';
    if (input && it.key() == "input") {
      if (input->size() < 256 || !append_json_string(out, *input)) out += dump(nlohmann::json(*input));
      continue;
    }
    const nlohmann::json& v = it.value();
    if (!v.is_string() || v.get_ref<const std::string&>().size() < 256 ||
        !append_json_string(out, v.get_ref<const std::string&>()))
      out += dump(v);
  }
  out += '}';
  return out;
}

// One record in the chosen layout. ruler: RULER's fields plus `others` (lctx's metadata under others.lctx, which
// RULER's call_api.py copies into the predictions) and `truncation` (-1, as call_api.py defaults it);
// babilong: the dataset's {input, question, target} only.
// The prompt is moved out of s while the record is made (record() would copy it) and back afterwards.
std::string serialise(const lctx::TaskGenerator& gen, lctx::Sample& s, const std::string& layout) {
  if (layout == "babilong") {
    nlohmann::json r{{"input", s.input}, {"question", s.question}, {"target", s.target}};
    return dump_record(r);
  }
  std::string input = std::move(s.input);
  s.input.clear();
  nlohmann::json r;
  try {
    r = gen.record(s);
  } catch (...) {
    s.input = std::move(input);
    throw;
  }
  s.input = std::move(input);
  if (!r.contains("input")) return dump_record(r);
  if (layout == "ruler") {
    nlohmann::json others = nlohmann::json::object();
    others["lctx"] = std::move(r["lctx"]);
    r.erase("lctx");
    r["others"] = std::move(others);
    r["truncation"] = -1;
  }
  return dump_record(r, &s.input);
}

// README.md of a BABILong-layout folder: the Hugging Face dataset card's `configs:` (config = length, split =
// task), rebuilt from the files present under OUT/data so that runs into the same folder accumulate.
void write_babilong_readme(const std::string& out) {
  std::map<std::string, std::vector<std::string>> by_config;  // config -> tasks
  auto task_rank = [](const std::string& t) { return t.size() > 2 ? std::atoi(t.c_str() + 2) : 0; };
  auto length_rank = [](const std::string& c) {
    int64_t v = std::atoll(c.c_str());
    if (c.find('M') != std::string::npos) v <<= 20;
    else if (c.find('k') != std::string::npos) v <<= 10;
    return v;
  };
  for (auto& td : lctx::list_dir(out + "/data")) {
    if (!td.is_dir) continue;
    for (auto& f : lctx::list_dir(td.path)) {
      if (!f.is_file || f.name.size() < 6 || f.name.substr(f.name.size() - 5) != ".json") continue;
      by_config[f.name.substr(0, f.name.size() - 5)].push_back(td.name);
    }
  }
  std::vector<std::string> configs;
  for (auto& kv : by_config) configs.push_back(kv.first);
  std::stable_sort(configs.begin(), configs.end(), [&](const std::string& a, const std::string& b) {
    return length_rank(a) != length_rank(b) ? length_rank(a) < length_rank(b) : a < b;
  });
  std::string y = "---\nconfigs:\n";
  for (auto& c : configs) {
    auto tasks = by_config[c];
    std::stable_sort(tasks.begin(), tasks.end(), [&](const std::string& a, const std::string& b) {
      return task_rank(a) != task_rank(b) ? task_rank(a) < task_rank(b) : a < b;
    });
    y += "- config_name: " + c + "\n  data_files:\n";
    for (auto& t : tasks) y += "  - split: " + t + "\n    path: data/" + t + "/" + c + ".json\n";
  }
  y += "---\n\nBABILong-format samples written by `lctx generate --suite babilong --layout babilong`. Load one length "
       "with `datasets.load_dataset(\"<this folder>\", \"4k\")[\"<task>\"]`; each record has `input` (context), "
       "`question` and `target`.\n";
  lctx::write_file_atomic(out + "/README.md", y);
}

// Generates samples [0, n) of one (task, length, depth) with `threads` workers and hands their serialised
// records to `sink` in index order. At most `threads` samples are in flight (32M-token samples are large).
void run_ordered(const lctx::TaskGenerator& gen, int64_t length, std::optional<double> depth, int64_t first,
                 int64_t n, int threads, const std::string& layout, const std::function<void(int64_t, const lctx::Sample&, const std::string&)>& sink) {
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
        d.line = serialise(gen, d.s, layout);
        if (layout != "babilong") d.line += '\n';
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
  const auto& in = o.in;
  const SuiteInfo& suite = suite_info(in.suite);  // throws for an unknown suite
  std::vector<std::string> tasks = expand_tasks(in.suite, in.tasks);
  if (tasks.empty()) throw Error("no " + in.suite + " tasks are available in this build");
  const bool explicit_all = in.tasks == "all" || in.tasks.empty();
  const std::vector<int64_t>& lengths = o.lengths;
  std::vector<std::optional<double>> depths;
  for (double d : o.depths) depths.push_back(d);
  if (depths.empty()) depths.push_back(std::nullopt);
  if (o.samples < 1) throw Error("--samples must be at least 1");
  if (o.layout != "lctx" && o.layout != "ruler" && o.layout != "babilong")
    throw Error("unknown layout '" + o.layout + "' (known: lctx, ruler, babilong)");
  if (o.layout != "lctx" && o.layout != in.suite)
    throw Error("--layout " + o.layout + " needs --suite " + o.layout);
  const bool single = o.index >= 0;
  if (!single && o.out.empty()) throw Error("--out DIR is required (or --index I to print one sample)");

  // Prompts are built in buffers of up to hundreds of MB, freed after each sample: keep freed memory mapped
  // (no trimming, heap rather than mmap up to glibc's 32 MB cap) so that the next sample does not fault every
  // page in again.
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 1 << 30);

  GenOptions gopt;
  gopt.seed = o.seed;
  gopt.templates = in.templates;
  gopt.qa_data = in.qa_data;
  gopt.haystack_dir = in.haystack;
  Resources res = load_resources(in.tokenizer, in.haystack);

  std::vector<std::pair<std::string, std::unique_ptr<TaskGenerator>>> gens;
  std::vector<std::string> skipped;
  for (auto& t : tasks) {
    if (suite.at(t).needs == "qa-data" && in.qa_data.empty() && explicit_all) {
      skipped.push_back(t);
      continue;
    }
    gens.emplace_back(t, make_generator(in.suite, t, res, gopt));
  }
  if (!skipped.empty()) {
    std::string s;
    for (auto& t : skipped) s += (s.empty() ? "" : ", ") + t;
    std::fprintf(stderr, "lctx: skipping %s: no --qa-data given (SQuAD v2.0 dev / HotpotQA dev distractor JSON)\n", s.c_str());
  }
  for (auto& [t, g] : gens)
    for (int64_t L : lengths)
      if (L < g->min_length())
        throw Error("impossible length " + format_length(L) + " for " + in.suite + "/" + t + " (minimum " +
                    format_length(g->min_length()) + ")");
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  if (single) {
    for (auto& [t, g] : gens)
      for (int64_t L : lengths)
        for (auto& d : depths) {
          if (d && !g->supports_depth() && &d != &depths.front()) continue;
          Sample s = g->generate(L, o.index, g->supports_depth() ? d : std::nullopt);
          std::string line = serialise(*g, s, o.layout);
          std::fwrite(line.data(), 1, line.size(), stdout);
          std::fputc('\n', stdout);
        }
    return 0;
  }

  ensure_dir(o.out);  // only once every input has been checked: a refused command leaves no folder behind
  nlohmann::json files = nlohmann::json::array();
  for (auto& [t, g] : gens) {
    for (int64_t L : lengths) {
      for (size_t di = 0; di < depths.size(); ++di) {
        std::optional<double> d = g->supports_depth() ? depths[di] : std::nullopt;
        if (!g->supports_depth() && di > 0) continue;  // depth-free tasks get one file per length
        const std::string dsuf = d ? "-depth" + format_depth(*d) : "";
        std::string rel;  // path of the file under OUT
        if (o.layout == "ruler") rel = std::to_string(L) + dsuf + "/" + t + "/validation.jsonl";
        else if (o.layout == "babilong") rel = "data/" + t + "/" + babilong_length_name(L) + dsuf + ".json";
        else rel = in.suite + "/" + t + "/" + format_length(L) + dsuf + ".jsonl";
        const std::string path = o.out + "/" + rel;
        ensure_dir(path.substr(0, path.rfind('/')));
        auto t0 = std::chrono::steady_clock::now();
        AtomicFile out(path);
        bool first_record = true;
        if (o.layout == "babilong") out.write("[\n");
        int64_t tokens = 0;
        run_ordered(*g, L, d, 0, o.samples, threads, o.layout, [&](int64_t i, const Sample& s, const std::string& line) {
          if (o.layout == "babilong" && !first_record) out.write(",\n");
          out.write(line);
          first_record = false;
          tokens += s.prompt_tokens;
          if (L >= (int64_t(1) << 20))
            std::fprintf(stderr, "  %s/%s %s: sample %lld/%lld\n", in.suite.c_str(), t.c_str(), format_length(L).c_str(),
                         static_cast<long long>(i + 1), static_cast<long long>(o.samples));
        });
        if (o.layout == "babilong") out.write("\n]\n");
        out.commit();
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::fprintf(stderr, "%s/%s %s%s: %lld samples, %.1f MB, %.2f s\n", in.suite.c_str(), t.c_str(),
                     format_length(L).c_str(), d ? (" depth " + format_depth(*d)).c_str() : "",
                     static_cast<long long>(o.samples), double(out.bytes()) / 1e6, secs);
        nlohmann::json f = {{"path", rel}, {"suite", in.suite}, {"task", t}, {"length", L}, {"samples", o.samples},
                            {"seed", o.seed}, {"bytes", out.bytes()}, {"prompt_tokens", tokens}};
        if (d) f["depth"] = *d;
        files.push_back(f);
      }
    }
  }
  if (o.layout == "babilong") write_babilong_readme(o.out);
  nlohmann::json man = {{"lctx_version", version_string()},
                        {"git", git_hash()},
                        {"suite", in.suite},
                        {"tasks", nlohmann::json::array()},
                        {"skipped", skipped},
                        {"lengths", lengths},
                        {"samples", o.samples},
                        {"seed", o.seed},
                        {"tokenizer", {{"path", res.tokenizer->path()}, {"hash", res.tokenizer->hash()}}},
                        {"corpus", res.corpus ? res.corpus->hash() : ""},
                        {"haystack", in.haystack.empty() ? Corpus::default_dir() : in.haystack},
                        {"templates", in.templates},
                        {"qa_data", in.qa_data},
                        {"layout", o.layout},
                        {"files", files}};
  for (auto& [t, g] : gens) man["tasks"].push_back(t);
  // Files of earlier runs into the same folder that this run did not rewrite stay listed (the top-level
  // fields describe the latest run; each file entry carries its own suite, task, length, samples and seed).
  {
    std::set<std::string> written;
    for (auto& f : files) written.insert(f["path"].get<std::string>());
    const std::string old_path = o.out + "/manifest.json";
    if (file_exists(old_path)) {
      auto old = nlohmann::json::parse(read_file(old_path), nullptr, false);
      if (old.is_object() && old.contains("files") && old["files"].is_array()) {
        nlohmann::json kept = nlohmann::json::array();
        for (auto& f : old["files"])
          if (f.is_object() && f.contains("path") && f["path"].is_string() &&
              !written.count(f["path"].get<std::string>()) && file_exists(o.out + "/" + f["path"].get<std::string>()))
            kept.push_back(f);
        for (auto& f : man["files"]) kept.push_back(f);
        man["files"] = kept;
      }
    }
  }
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
  lctx::cli::add_task_inputs(app, o->in);
  lctx::cli::add_lengths(app, o->lengths, "comma-separated target lengths in tokens: 4k,8k,...,32m (default 4k)");
  lctx::cli::add_int(app, "--samples", o->samples, 1, lctx::cli::kMaxSamples, "samples per task and length");
  lctx::cli::add_seed(app, o->seed);
  lctx::cli::add_depths(app, o->depths, "fixed needle depths in percent, e.g. 0,25,50,75,100 (one file per depth)");
  lctx::cli::add_int(app, "--threads", o->threads, 0, lctx::cli::kMaxThreads, "worker threads (0: all cores)");
  app.add_option("--out", o->out, "output folder (files as --layout says) and OUT/manifest.json");
  lctx::cli::add_int(app, "--index", o->index, 0, int64_t(1) << 53,
                     "print only sample I (one JSONL line per task/length) to stdout")
      ->default_str("");
  app.add_option("--layout", o->layout,
                 "lctx: OUT/<suite>/<task>/<length>.jsonl (default); ruler: OUT/<length>/<task>/validation.jsonl "
                 "(RULER's tree, for its call_api.py/evaluate.py); babilong: OUT/data/<task>/<len>.json + README.md "
                 "configs (the Hugging Face BABILong dataset)");
  return [o]() -> int { return run(*o); };
});

}  // namespace
