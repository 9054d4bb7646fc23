#include "reports/report.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "reports/common.hpp"
#include "reports/svg.hpp"
#include "tasks/catalog.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "core/lengths.hpp"
#include "core/files.hpp"

namespace lctx::reports {

using json = nlohmann::json;
namespace fs = std::filesystem;

// ---- loading ----------------------------------------------------------------------------------------------

namespace {

std::string need_str(const json& j, const char* k, const std::string& where) {
  if (!j.contains(k) || !j[k].is_string()) throw Error(where + ": missing string field '" + k + "'");
  return j[k].get<std::string>();
}
// An integer field (a JSON integer, or a float with an integral value) in [lo, hi].
int64_t int_field(const json& v, const char* k, const std::string& where, int64_t lo, int64_t hi) {
  int64_t r = 0;
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(hi)) throw Error(where + ": '" + k + "' is out of range");
    r = static_cast<int64_t>(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    r = v.get<int64_t>();
  } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
             std::fabs(v.get<double>()) < 9.0e18) {
    r = static_cast<int64_t>(v.get<double>());
  } else {
    throw Error(where + ": '" + k + "' must be an integer");
  }
  if (r < lo || r > hi)
    throw Error(where + ": '" + k + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                std::to_string(r));
  return r;
}
int64_t need_int(const json& j, const char* k, const std::string& where, int64_t lo, int64_t hi) {
  if (!j.contains(k) || !j[k].is_number()) throw Error(where + ": missing number field '" + k + "'");
  return int_field(j[k], k, where, lo, hi);
}
std::string opt_str(const json& j, const char* k) {
  return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
}
std::optional<double> opt_num(const json& j, const char* k) {
  if (j.contains(k) && j[k].is_number()) return j[k].get<double>();
  return std::nullopt;
}

std::vector<std::string> result_files(const std::string& input) {
  if (!fs::is_directory(input)) {
    if (!fs::exists(input)) throw Error("no such results directory or file: " + input);
    return {input};
  }
  std::vector<std::string> out;
  for (auto& e : list_dir(input)) {
    const std::string& n = e.name;
    bool match = n == "results.jsonl" ||
                 (n.rfind("results.", 0) == 0 && n.size() > 14 && n.compare(n.size() - 6, 6, ".jsonl") == 0);
    if (match && e.is_file) out.push_back(e.path);
  }
  if (out.empty()) throw Error("no results.jsonl or results.*.jsonl in " + input);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Record parse_record(const json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": expected a JSON object");
  Record r;
  r.key = need_str(j, "key", where);
  r.model = need_str(j, "model", where);
  r.model_name = opt_str(j, "model_name");
  if (r.model_name.empty()) r.model_name = r.model;
  r.suite = need_str(j, "suite", where);
  r.task = need_str(j, "task", where);
  r.length = need_int(j, "length", where, 0, int64_t(1) << 40);
  if (!j.contains("score") || !j["score"].is_number()) throw Error(where + ": missing number field 'score'");
  r.score = j["score"].get<double>();
  if (!(r.score >= 0 && r.score <= 1)) throw Error(where + ": 'score' must be in [0, 1]");
  if (j.contains("teacher_forced") && j["teacher_forced"].is_number()) {
    r.teacher_forced = j["teacher_forced"].get<double>();
    if (!(*r.teacher_forced >= 0 && *r.teacher_forced <= 1)) throw Error(where + ": 'teacher_forced' must be in [0, 1]");
  }
  r.metric = opt_str(j, "metric");
  r.prediction = opt_str(j, "prediction");
  if (j.contains("depth") && j["depth"].is_number()) {
    r.depth = j["depth"].get<double>();
    if (!(*r.depth >= 0 && *r.depth <= 100)) throw Error(where + ": 'depth' must be in [0, 100]");
  }
  if (j.contains("index") && j["index"].is_number()) r.index = int_field(j["index"], "index", where, 0, INT64_MAX);
  if (j.contains("seed") && j["seed"].is_number()) {  // any 64-bit seed; kept as its two's-complement bits
    if (j["seed"].is_number_unsigned()) r.seed = static_cast<int64_t>(j["seed"].get<uint64_t>());
    else r.seed = int_field(j["seed"], "seed", where, 0, INT64_MAX);
  }
  if (j.contains("prompt_tokens") && j["prompt_tokens"].is_number())
    r.prompt_tokens = int_field(j["prompt_tokens"], "prompt_tokens", where, 0, INT64_MAX);
  r.prefill_s = opt_num(j, "prefill_s");
  r.decode_s = opt_num(j, "decode_s");
  r.tokens_per_s = opt_num(j, "tokens_per_s");
  r.peak_device_mb = opt_num(j, "peak_device_mb");
  r.peak_host_mb = opt_num(j, "peak_host_mb");
  r.device = opt_str(j, "device");
  r.tokenizer_hash = opt_str(j, "tokenizer_hash");
  r.lctx_version = opt_str(j, "lctx_version");
  r.git_hash = opt_str(j, "git_hash");
  return r;
}

namespace {
// The fields of a record that are a deterministic function of its key and the run's settings
// (docs/results-schema.md): two records of one key must agree on them.
std::string identity_of(const json& j) {
  json id = json::object();
  for (const char* k : {"model", "suite", "task", "length", "depth", "index", "seed", "prediction", "reference",
                        "metric", "score", "prompt_tokens", "max_new", "tokenizer_hash"})
    if (j.contains(k)) id[k] = j[k];
  return id.dump(-1, ' ', false, json::error_handler_t::replace);
}
std::string first_difference(const json& a, const json& b) {
  for (const char* k : {"tokenizer_hash", "score", "prediction", "max_new", "metric", "reference", "prompt_tokens"})
    if (a.value(k, json()) != b.value(k, json())) return k;
  return "fields";
}
}  // namespace

std::vector<Record> load_results(const std::vector<std::string>& inputs, int64_t* duplicates) {
  if (inputs.empty()) throw Error("no results directories given");
  std::vector<Record> all;
  struct Seen {
    std::string identity, where;
    json record;
  };
  std::map<std::string, Seen> seen;
  std::map<std::string, std::pair<std::string, std::string>> tokenizer_of;  // model -> (hash, where)
  int64_t dup = 0, skipped = 0;
  for (auto& in : inputs)
    for (auto& f : result_files(in))
      read_jsonl(
          f, true,
          [&](int64_t line, const json& j) {
            const std::string where = f + ":" + std::to_string(line);
            Record r = parse_record(j, where);
            auto it = seen.find(r.key);
            if (it != seen.end()) {
              // The same key twice is the same sample, model and seed: keep one, but never silently drop a
              // record that disagrees with the kept one (other settings, other weights).
              if (identity_of(j) != it->second.identity)
                throw Error(where + ": record " + r.key.substr(0, 200) + " conflicts with " + it->second.where +
                            " (" + first_difference(j, it->second.record) +
                            " differs): the folders hold results of other settings; report them separately");
              ++dup;
              return;
            }
            if (!r.tokenizer_hash.empty()) {
              auto t = tokenizer_of.emplace(r.model, std::make_pair(r.tokenizer_hash, where)).first;
              if (t->second.first != r.tokenizer_hash)
                throw Error(where + ": model " + r.model + " has records made with two tokenizers (" +
                            r.tokenizer_hash + " here, " + t->second.first + " at " + t->second.second +
                            "); their scores cannot be averaged: report them separately");
            }
            seen.emplace(r.key, Seen{identity_of(j), where, j});
            all.push_back(std::move(r));
          },
          [&](int64_t line, const std::string&) {
            ++skipped;
            std::fprintf(stderr, "lctx: warning: %s:%lld: skipped a line that is not valid JSON (a damaged record)\n",
                         f.c_str(), static_cast<long long>(line));
          });
  std::sort(all.begin(), all.end(), [](const Record& a, const Record& b) { return a.key < b.key; });
  if (duplicates) *duplicates = dup;
  return all;
}

// ---- aggregation ------------------------------------------------------------------------------------------

std::optional<int64_t> effective_length(std::vector<std::pair<int64_t, double>> pts, double threshold) {
  std::sort(pts.begin(), pts.end());
  std::optional<int64_t> best;
  for (auto& [l, a] : pts) {
    if (a < threshold) break;
    best = l;
  }
  return best;
}

namespace {

struct Acc {
  double sum = 0;
  int64_t n = 0, nulls = 0;
  double mean100() const { return n ? sum / static_cast<double>(n) * 100.0 : 0.0; }
};

json opt_json(std::optional<double> v, int dec = 2) { return v ? json(round_to(*v, dec)) : json(nullptr); }
json opt_json_i(std::optional<int64_t> v) { return v ? json(*v) : json(nullptr); }

bool is_null_pred(const std::string& p) { return p.find_first_not_of(" \t\r\n") == std::string::npos; }

// "RULER average (13 tasks)" when the whole headline set is present, else "RULER average (4 of 13 tasks)"; the
// catalogue may name the set ("BABILong average (qa1-qa5)"). used == 0: none of the headline set was run; the
// average is over the tasks that were.
std::string suite_average_name(const std::string& suite, size_t used, size_t canon) {
  const SuiteInfo* si = find_suite(suite);
  if (used == 0 || !si) return suite_display(suite) + " average";
  const std::string of = canon && used < canon ? std::to_string(used) + " of " : "";
  const std::string set = si->headline_label.empty() ? std::to_string(canon) + " tasks" : si->headline_label;
  return si->display + " average (" + of + set + ")";
}

struct Prov {
  std::set<std::string> versions, hashes, tokenizers, devices;
  std::set<int64_t> seeds;
  void add(const Record& r) {
    if (!r.lctx_version.empty()) versions.insert(r.lctx_version);
    if (!r.git_hash.empty()) hashes.insert(r.git_hash);
    if (!r.tokenizer_hash.empty()) tokenizers.insert(r.tokenizer_hash);
    if (!r.device.empty()) devices.insert(r.device);
    seeds.insert(r.seed);
  }
  json to_json() const {
    return {{"lctx_versions", versions}, {"git_hashes", hashes}, {"tokenizer_hashes", tokenizers},
            {"seeds", seeds}, {"devices", devices}};
  }
};

std::vector<std::string> ordered_suites(const std::set<std::string>& s) {  // catalogue order, then others
  std::vector<std::string> v(s.begin(), s.end());
  std::stable_sort(v.begin(), v.end(), [&](auto& a, auto& b) { return suite_rank(a) < suite_rank(b); });
  return v;
}

}  // namespace

json build_leaderboard(const std::vector<Record>& recs, const ReportOptions& opts) {
  // model -> suite -> task -> length -> Acc   (std::map keys give a deterministic order)
  struct TaskAgg {
    std::string metric;
    std::map<int64_t, Acc> by_len;
    std::map<std::pair<double, int64_t>, Acc> by_depth;  // (depth, length)
  };
  struct PerfAgg {
    int64_t samples = 0;
    Acc tps, prefill, decode;
    std::optional<double> dev, host;
    int64_t prompt_tokens = 0;
  };
  struct ModelAgg {
    std::string name;
    int64_t records = 0;
    std::map<std::string, std::map<TaskOrder, TaskAgg>> suites;
    std::map<int64_t, PerfAgg> perf;
    Prov prov;
  };
  std::map<std::string, ModelAgg> models;
  Prov prov_all;
  for (const auto& r : recs) {
    ModelAgg& m = models[r.model];
    if (m.name.empty()) m.name = r.model_name;
    m.records++;
    m.prov.add(r);
    prov_all.add(r);
    TaskAgg& t = m.suites[r.suite][task_order(r.suite, r.task)];
    if (t.metric.empty()) t.metric = r.metric;
    Acc& a = t.by_len[r.length];
    a.sum += r.score;
    a.n++;
    if (is_null_pred(r.prediction)) a.nulls++;
    if (r.depth) {
      Acc& d = t.by_depth[{*r.depth, r.length}];
      d.sum += r.score;
      d.n++;
    }
    PerfAgg& p = m.perf[r.length];
    p.samples++;
    if (r.tokens_per_s && *r.tokens_per_s > 0) p.tps.sum += *r.tokens_per_s, p.tps.n++;
    if (r.prefill_s) p.prefill.sum += *r.prefill_s, p.prefill.n++;
    if (r.decode_s) p.decode.sum += *r.decode_s, p.decode.n++;
    if (r.peak_device_mb) p.dev = std::max(p.dev.value_or(0.0), *r.peak_device_mb);
    if (r.peak_host_mb) p.host = std::max(p.host.value_or(0.0), *r.peak_host_mb);
    p.prompt_tokens = std::max(p.prompt_tokens, r.prompt_tokens);
  }

  // order models by display name, then spec
  std::vector<const std::pair<const std::string, ModelAgg>*> order;
  for (auto& kv : models) order.push_back(&kv);
  std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->second.name < b->second.name; });

  std::set<std::string> suites_all;
  json jmodels = json::array();
  for (auto* kv : order) {
    const ModelAgg& m = kv->second;
    json jsuites = json::array();
    std::set<std::string> names;
    for (auto& kv2 : m.suites) names.insert(kv2.first);
    for (const std::string& suite : ordered_suites(names)) {
      const auto& tasks = m.suites.at(suite);
      suites_all.insert(suite);
      json jtasks = json::array();
      std::map<int64_t, std::map<std::string, double>> per_len;  // length -> task -> accuracy
      for (auto& [to, t] : tasks) {
        json jl = json::array();
        std::vector<std::pair<int64_t, double>> pts;
        for (auto& [len, a] : t.by_len) {
          jl.push_back({{"length", len}, {"label", format_length(len)}, {"accuracy", round_to(a.mean100(), 2)},
                        {"n", a.n}, {"nulls", a.nulls}});
          pts.push_back({len, a.mean100()});
          per_len[len][to.name] = a.mean100();
        }
        json jd = json::array();
        for (auto& [dl, a] : t.by_depth)
          jd.push_back({{"depth", dl.first}, {"length", dl.second}, {"accuracy", round_to(a.mean100(), 2)}, {"n", a.n}});
        jtasks.push_back({{"task", to.name},
                          {"metric", t.metric},
                          {"effective_length", opt_json_i(effective_length(pts, opts.threshold))},
                          {"lengths", jl},
                          {"depths", jd}});
      }
      // suite averages over the catalogue's headline tasks (RULER: all 13; BABILong: qa1-qa5, the published
      // headline numbers); tasks outside that set (or any task, for an unknown suite) are averaged only when none
      // of the set is present.
      const SuiteInfo* si = find_suite(suite);
      std::vector<std::string> canon = si ? si->headline() : std::vector<std::string>{};
      std::set<std::string> present;
      for (auto& [to, t] : tasks) present.insert(to.name);
      std::vector<std::string> avg_tasks;
      for (auto& c : canon)
        if (present.count(c)) avg_tasks.push_back(c);
      const size_t canon_used = avg_tasks.size();
      if (avg_tasks.empty())
        for (auto& [to, t] : tasks) avg_tasks.push_back(to.name);
      json jal = json::array();
      std::vector<std::pair<int64_t, double>> apts;
      for (auto& [len, accs] : per_len) {
        double sum = 0;
        int k = 0;
        for (auto& t : avg_tasks)
          if (accs.count(t)) sum += accs.at(t), ++k;
        if (k == 0) continue;
        double avg = sum / k;
        apts.push_back({len, avg});
        jal.push_back({{"length", len}, {"label", format_length(len)}, {"accuracy", round_to(avg, 2)}, {"tasks", k},
                       {"complete", canon.empty() ? k == static_cast<int>(avg_tasks.size())
                                                  : k == static_cast<int>(canon.size())}});
      }
      std::optional<double> overall, winc, wdec;
      if (!apts.empty()) {
        double s = 0, si = 0, sd = 0, wi = 0, wd = 0;
        size_t L = apts.size();
        for (size_t i = 0; i < L; ++i) {
          s += apts[i].second;
          si += apts[i].second * static_cast<double>(i + 1);
          wi += static_cast<double>(i + 1);
          sd += apts[i].second * static_cast<double>(L - i);
          wd += static_cast<double>(L - i);
        }
        overall = s / static_cast<double>(L);
        winc = si / wi;
        wdec = sd / wd;
      }
      jsuites.push_back({{"suite", suite},
                         {"tasks", jtasks},
                         {"average", {{"name", suite_average_name(suite, canon_used, canon.size())},
                                      {"tasks", avg_tasks},
                                      {"lengths", jal},
                                      {"overall", opt_json(overall)},
                                      {"weighted_inc", opt_json(winc)},
                                      {"weighted_dec", opt_json(wdec)},
                                      {"effective_length", opt_json_i(effective_length(apts, opts.threshold))}}}});
    }
    json jperf = json::array();
    for (auto& [len, p] : m.perf) {
      jperf.push_back({{"length", len},
                       {"label", format_length(len)},
                       {"samples", p.samples},
                       {"max_prompt_tokens", p.prompt_tokens},
                       {"tokens_per_s", p.tps.n ? json(round_to(p.tps.sum / p.tps.n, 2)) : json(nullptr)},
                       {"prefill_s", p.prefill.n ? json(round_to(p.prefill.sum / p.prefill.n, 4)) : json(nullptr)},
                       {"decode_s", p.decode.n ? json(round_to(p.decode.sum / p.decode.n, 4)) : json(nullptr)},
                       {"peak_device_mb", opt_json(p.dev, 1)},
                       {"peak_host_mb", opt_json(p.host, 1)}});
    }
    jmodels.push_back({{"model", kv->first},
                       {"name", m.name},
                       {"records", m.records},
                       {"provenance", m.prov.to_json()},
                       {"suites", jsuites},
                       {"performance", jperf}});
  }
  return {{"schema", kLeaderboardSchema},
          {"title", opts.title},
          {"threshold", opts.threshold},
          {"records", static_cast<int64_t>(recs.size())},
          {"suites", ordered_suites(suites_all)},
          {"provenance", prov_all.to_json()},
          {"models", jmodels}};
}

// ---- rendering --------------------------------------------------------------------------------------------

namespace {

std::string file_safe(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
  return o;
}

std::string cell(const json& v) { return v.is_null() ? "-" : fixed(v.get<double>()); }

std::string len_or_dash(const json& v) {
  return v.is_null() ? "-" : format_length(v.get<int64_t>());
}

// All lengths of a suite across models (sorted).
std::vector<int64_t> suite_lengths(const json& lb, const std::string& suite) {
  std::set<int64_t> ls;
  for (auto& m : lb["models"])
    for (auto& s : m["suites"])
      if (s["suite"] == suite)
        for (auto& t : s["tasks"])
          for (auto& l : t["lengths"]) ls.insert(l["length"].get<int64_t>());
  return {ls.begin(), ls.end()};
}

const json* find_suite(const json& m, const std::string& suite) {
  for (auto& s : m["suites"])
    if (s["suite"] == suite) return &s;
  return nullptr;
}

std::optional<double> avg_at(const json& s, int64_t len) {
  for (auto& l : s["average"]["lengths"])
    if (l["length"] == len) return l["accuracy"].get<double>();
  return std::nullopt;
}

std::optional<double> task_at(const json& t, int64_t len) {
  for (auto& l : t["lengths"])
    if (l["length"] == len) return l["accuracy"].get<double>();
  return std::nullopt;
}

std::string opt_cell(std::optional<double> v) { return v ? fixed(*v) : "-"; }

std::string provenance_line(const json& p) {
  auto join = [](const json& a) {
    std::string s;
    for (auto& x : a) s += (s.empty() ? "" : ", ") + (x.is_string() ? x.get<std::string>() : x.dump());
    return s.empty() ? std::string("-") : s;
  };
  return "lctx " + join(p["lctx_versions"]) + " (git " + join(p["git_hashes"]) + "); tokenizer " +
         join(p["tokenizer_hashes"]) + "; seeds " + join(p["seeds"]) + "; devices " + join(p["devices"]);
}

// Table rows shared by Markdown and HTML: header + rows of cells.
struct Table {
  std::vector<std::string> head;
  std::vector<std::vector<std::string>> rows;
};

Table suite_summary(const json& lb, const std::string& suite) {
  Table t;
  auto lens = suite_lengths(lb, suite);
  t.head = {"Model", "Effective"};
  for (auto l : lens) t.head.push_back(format_length(l));
  t.head.insert(t.head.end(), {"Avg", "wAvg (inc)", "wAvg (dec)"});
  for (auto& m : lb["models"]) {
    const json* s = find_suite(m, suite);
    if (!s) continue;
    std::vector<std::string> row = {m["name"].get<std::string>(), len_or_dash((*s)["average"]["effective_length"])};
    for (auto l : lens) row.push_back(opt_cell(avg_at(*s, l)));
    row.push_back(cell((*s)["average"]["overall"]));
    row.push_back(cell((*s)["average"]["weighted_inc"]));
    row.push_back(cell((*s)["average"]["weighted_dec"]));
    t.rows.push_back(row);
  }
  return t;
}

Table task_table(const json& s) {
  Table t;
  std::set<int64_t> ls;
  for (auto& task : s["tasks"])
    for (auto& l : task["lengths"]) ls.insert(l["length"].get<int64_t>());
  t.head = {"Task", "Metric"};
  for (auto l : ls) t.head.push_back(format_length(l));
  t.head.push_back("Effective");
  for (auto& task : s["tasks"]) {
    std::vector<std::string> row = {task["task"].get<std::string>(), task["metric"].get<std::string>()};
    for (auto l : ls) row.push_back(opt_cell(task_at(task, l)));
    row.push_back(len_or_dash(task["effective_length"]));
    t.rows.push_back(row);
  }
  std::vector<std::string> avg = {s["average"]["name"].get<std::string>(), ""};
  for (auto l : ls) avg.push_back(opt_cell(avg_at(s, l)));
  avg.push_back(len_or_dash(s["average"]["effective_length"]));
  t.rows.push_back(avg);
  return t;
}

Table perf_table(const json& m) {
  Table t;
  t.head = {"Length", "Samples", "Max prompt tokens", "Prefill tokens/s", "Prefill s", "Decode s", "Peak device MB",
            "Peak host MB"};
  for (auto& p : m["performance"]) {
    auto c4 = [](const json& v) { return v.is_null() ? std::string("-") : fixed(v.get<double>(), 3); };
    auto c1 = [](const json& v) { return v.is_null() ? std::string("-") : fixed(v.get<double>(), 1); };
    t.rows.push_back({p["label"].get<std::string>(), std::to_string(p["samples"].get<int64_t>()),
                      std::to_string(p["max_prompt_tokens"].get<int64_t>()), c1(p["tokens_per_s"]),
                      c4(p["prefill_s"]), c4(p["decode_s"]), c1(p["peak_device_mb"]), c1(p["peak_host_mb"])});
  }
  return t;
}

std::string md_table(const Table& t) {
  auto esc = [](std::string s) {
    std::string o;
    for (char c : s) o += c == '|' ? std::string("\\|") : std::string(1, c);
    return o;
  };
  std::string out = "|";
  for (auto& h : t.head) out += " " + esc(h) + " |";
  out += "\n|";
  for (size_t i = 0; i < t.head.size(); ++i) out += i == 0 ? " --- |" : " ---: |";
  out += "\n";
  for (auto& r : t.rows) {
    out += "|";
    for (auto& c : r) out += " " + esc(c) + " |";
    out += "\n";
  }
  return out;
}

std::string html_table(const Table& t, bool heat) {
  std::string out = "<table>\n<thead><tr>";
  for (auto& h : t.head) out += "<th>" + xml_escape(h) + "</th>";
  out += "</tr></thead>\n<tbody>\n";
  for (auto& r : t.rows) {
    out += "<tr>";
    for (size_t i = 0; i < r.size(); ++i) {
      const std::string& c = r[i];
      bool numeric = !c.empty() && (std::isdigit(static_cast<unsigned char>(c[0])) || c == "-");
      std::string style;
      if (heat && numeric && c != "-" && i >= 1 && c.find_first_not_of("0123456789.") == std::string::npos &&
          t.head[i] != "Effective")
        style = " style=\"background:" + ryg(std::strtod(c.c_str(), nullptr) / 100.0) + "\"";
      out += std::string(i == 0 ? "<th scope=\"row\"" : numeric ? "<td class=\"n\"" : "<td") + style + ">" +
             xml_escape(c) + (i == 0 ? "</th>" : "</td>");
    }
    out += "</tr>\n";
  }
  return out + "</tbody>\n</table>\n";
}

}  // namespace

std::vector<Chart> render_charts(const json& lb) {
  std::vector<Chart> out;
  const double thr = lb["threshold"].get<double>();
  for (auto& suite_j : lb["suites"]) {
    std::string suite = suite_j.get<std::string>();
    LineChart c;
    c.title = suite_display(suite) + ": average accuracy vs context length";
    c.x_label = "context length (tokens, log2 scale)";
    c.y_label = "accuracy (%)";
    c.y_min = 0;
    c.y_max = 100;
    c.hline = thr;
    c.hline_label = "threshold " + fixed(thr, 1);
    for (auto& m : lb["models"]) {
      const json* s = find_suite(m, suite);
      if (!s) continue;
      Series se{m["name"].get<std::string>(), {}};
      for (auto& l : (*s)["average"]["lengths"])
        se.points.push_back({static_cast<double>(l["length"].get<int64_t>()), l["accuracy"].get<double>()});
      c.series.push_back(se);
    }
    out.push_back({"accuracy_" + file_safe(suite) + ".svg", c.title, render_line_chart(c)});
  }
  // task x length heatmap per model and suite (BABILong-leaderboard style)
  for (auto& m : lb["models"]) {
    for (auto& s : m["suites"]) {
      Heatmap h;
      std::string suite = s["suite"].get<std::string>();
      h.title = m["name"].get<std::string>() + ": " + suite + " accuracy per task";
      h.x_label = "context length (tokens)";
      h.y_label = "task";
      std::set<int64_t> ls;
      for (auto& t : s["tasks"])
        for (auto& l : t["lengths"]) ls.insert(l["length"].get<int64_t>());
      for (auto l : ls) h.x_ticks.push_back(format_length(l));
      for (auto& t : s["tasks"]) {
        h.y_ticks.push_back(t["task"].get<std::string>());
        std::vector<std::optional<double>> row;
        for (auto l : ls) row.push_back(task_at(t, l));
        h.v.push_back(row);
      }
      out.push_back({"tasks_" + file_safe(suite) + "_" + file_safe(m["name"].get<std::string>()) + ".svg", h.title,
                     render_heatmap(h)});
      // depth x length per task with depths (the needle picture)
      for (auto& t : s["tasks"]) {
        if (t["depths"].empty()) continue;
        Heatmap d;
        d.title = m["name"].get<std::string>() + ": " + t["task"].get<std::string>() + " by needle depth";
        d.x_label = "context length (tokens)";
        d.y_label = "depth (% of context)";
        std::set<double> ds;
        std::set<int64_t> dl;
        for (auto& x : t["depths"]) ds.insert(x["depth"].get<double>()), dl.insert(x["length"].get<int64_t>());
        for (auto l : dl) d.x_ticks.push_back(format_length(l));
        for (double dep : ds) {
          d.y_ticks.push_back(num(dep));
          std::vector<std::optional<double>> row(dl.size());
          for (auto& x : t["depths"])
            if (x["depth"].get<double>() == dep)
              row[std::distance(dl.begin(), dl.find(x["length"].get<int64_t>()))] = x["accuracy"].get<double>();
          d.v.push_back(row);
        }
        out.push_back({"depth_" + file_safe(m["name"].get<std::string>()) + "_" + file_safe(t["task"].get<std::string>()) +
                           ".svg",
                       d.title, render_heatmap(d)});
      }
    }
  }
  // throughput and memory vs length
  LineChart tp, mem;
  tp.title = "Prefill throughput vs context length";
  tp.x_label = "context length (tokens, log2 scale)";
  tp.y_label = "tokens / s (log scale)";
  tp.log_y = true;
  mem.title = "Peak memory vs context length";
  mem.x_label = "context length (tokens, log2 scale)";
  mem.y_label = "peak memory, MB (log scale)";
  mem.log_y = true;
  bool any_tp = false, any_mem = false;
  for (auto& m : lb["models"]) {
    Series a{m["name"].get<std::string>(), {}}, dev{m["name"].get<std::string>() + " (device)", {}},
        host{m["name"].get<std::string>() + " (host)", {}};
    bool has_dev = false, has_host = false;
    for (auto& p : m["performance"]) {
      double x = static_cast<double>(p["length"].get<int64_t>());
      auto get = [&](const char* k) -> std::optional<double> {
        return p[k].is_null() ? std::nullopt : std::optional<double>(p[k].get<double>());
      };
      a.points.push_back({x, get("tokens_per_s")});
      dev.points.push_back({x, get("peak_device_mb")});
      host.points.push_back({x, get("peak_host_mb")});
      any_tp = any_tp || get("tokens_per_s").has_value();
      has_dev = has_dev || get("peak_device_mb").has_value();
      has_host = has_host || get("peak_host_mb").has_value();
    }
    tp.series.push_back(a);
    if (has_dev) mem.series.push_back(dev);
    if (has_host) mem.series.push_back(host);
    any_mem = any_mem || has_dev || has_host;
  }
  if (any_tp) out.push_back({"throughput.svg", tp.title, render_line_chart(tp)});
  if (any_mem) out.push_back({"memory.svg", mem.title, render_line_chart(mem)});
  return out;
}

std::string render_markdown(const json& lb) {
  std::string out = "# " + lb["title"].get<std::string>() + "\n\n";
  out += "Generated by `lctx report` from " + std::to_string(lb["records"].get<int64_t>()) +
         " results (schema `" + lb["schema"].get<std::string>() + "`). " + provenance_line(lb["provenance"]) + ".\n\n";
  out += "Accuracy in %. *Effective* is the largest length whose accuracy, and that of every shorter length, is at "
         "least " + fixed(lb["threshold"].get<double>(), 1) + ". Avg is the mean over lengths; wAvg weights "
         "lengths linearly increasing (inc) or decreasing (dec) with length, as on the RULER leaderboard.\n\n";
  for (auto& suite_j : lb["suites"]) {
    std::string suite = suite_j.get<std::string>();
    out += "## " + suite_display(suite) + "\n\n";
    out += md_table(suite_summary(lb, suite)) + "\n";
    out += "![accuracy](charts/accuracy_" + file_safe(suite) + ".svg)\n\n";
  }
  for (auto& m : lb["models"]) {
    out += "## Model " + m["name"].get<std::string>() + "\n\n`" + m["model"].get<std::string>() + "`: " +
           std::to_string(m["records"].get<int64_t>()) + " results; " + provenance_line(m["provenance"]) + ".\n\n";
    for (auto& s : m["suites"]) {
      out += "### " + s["suite"].get<std::string>() + "\n\n" + md_table(task_table(s)) + "\n";
    }
    out += "### Performance\n\n" + md_table(perf_table(m)) + "\n";
  }
  return out;
}

std::string render_html(const json& lb, const std::vector<Chart>& charts) {
  auto chart = [&](const std::string& file) -> std::string {
    for (auto& c : charts)
      if (c.file == file) {
        auto p = c.svg.find("<svg");
        return "<figure>" + c.svg.substr(p) + "</figure>\n";
      }
    return "";
  };
  std::string title = xml_escape(lb["title"].get<std::string>());
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + title +
      "</title>\n<style>\n"
      "body{font-family:Helvetica,Arial,sans-serif;margin:24px 32px;color:#222;max-width:1300px}\n"
      "h1{font-size:26px;margin-bottom:4px}h2{font-size:20px;border-bottom:1px solid #ccc;padding-bottom:4px;"
      "margin-top:32px}h3{font-size:16px;margin-top:20px}\n"
      "p.meta{color:#555;font-size:13px}\n"
      "table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}\n"
      "th,td{border:1px solid #d0d0d0;padding:3px 8px}thead th{background:#f0f0f0}\n"
      "th[scope=row]{text-align:left;font-weight:normal}td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
      "figure{margin:8px 0;display:inline-block;vertical-align:top}\n"
      ".charts{display:flex;flex-wrap:wrap;gap:12px}\n"
      "</style>\n</head>\n<body>\n<h1>" + title + "</h1>\n";
  out += "<p class=\"meta\">" + std::to_string(lb["records"].get<int64_t>()) + " results, schema " +
         xml_escape(lb["schema"].get<std::string>()) + ". " + xml_escape(provenance_line(lb["provenance"])) +
         ". Accuracy in %; <em>Effective</em> = largest length whose accuracy and that of every shorter length is "
         "&ge; " + fixed(lb["threshold"].get<double>(), 1) + ".</p>\n";
  for (auto& suite_j : lb["suites"]) {
    std::string suite = suite_j.get<std::string>();
    out += "<h2>" + xml_escape(suite_display(suite)) + "</h2>\n";
    out += html_table(suite_summary(lb, suite), true);
    out += "<div class=\"charts\">" + chart("accuracy_" + file_safe(suite) + ".svg") + "</div>\n";
  }
  out += "<h2>Performance</h2>\n<div class=\"charts\">" + chart("throughput.svg") + chart("memory.svg") + "</div>\n";
  for (auto& m : lb["models"]) {
    std::string name = m["name"].get<std::string>();
    out += "<h2>Model " + xml_escape(name) + "</h2>\n<p class=\"meta\"><code>" + xml_escape(m["model"].get<std::string>()) +
           "</code>: " + std::to_string(m["records"].get<int64_t>()) + " results; " +
           xml_escape(provenance_line(m["provenance"])) + ".</p>\n";
    for (auto& s : m["suites"]) {
      std::string suite = s["suite"].get<std::string>();
      out += "<h3>" + xml_escape(suite) + "</h3>\n" + html_table(task_table(s), true);
      out += "<div class=\"charts\">" + chart("tasks_" + file_safe(suite) + "_" + file_safe(name) + ".svg");
      for (auto& t : s["tasks"])
        if (!t["depths"].empty()) out += chart("depth_" + file_safe(name) + "_" + file_safe(t["task"].get<std::string>()) + ".svg");
      out += "</div>\n";
    }
    out += "<h3>Performance</h3>\n" + html_table(perf_table(m), false);
  }
  out += "</body>\n</html>\n";
  return out;
}

std::vector<std::string> write_report(const std::vector<std::string>& inputs, const std::string& out_dir,
                                      const ReportOptions& opts) {
  auto recs = load_results(inputs);
  if (recs.empty()) throw Error("no results records found");
  if (opts.score == "teacher-forced") {
    std::vector<Record> kept;
    for (auto& r : recs)
      if (r.teacher_forced) {
        r.score = *r.teacher_forced;
        r.metric = "teacher_forced";
        kept.push_back(std::move(r));
      }
    if (kept.empty()) throw Error("no record has a teacher_forced score (built-in models record one)");
    recs = std::move(kept);
  } else if (opts.score != "score") {
    throw Error("unknown score '" + opts.score + "' (expected score or teacher-forced)");
  }
  json lb = build_leaderboard(recs, opts);
  auto charts = render_charts(lb);
  ensure_dir(out_dir);
  ensure_dir(out_dir + "/charts");
  std::vector<std::string> files;
  auto put = [&](const std::string& rel, const std::string& data) {
    write_file_atomic(out_dir + "/" + rel, data);
    files.push_back(out_dir + "/" + rel);
  };
  put("leaderboard.json", lb.dump(2) + "\n");
  put("report.md", render_markdown(lb));
  for (auto& c : charts) put("charts/" + c.file, c.svg);
  put("report.html", render_html(lb, charts));
  return files;
}

}  // namespace lctx::reports
