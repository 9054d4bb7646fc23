#include "reports/score.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <tuple>

#include "reports/common.hpp"
#include "tasks/catalog.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "core/lengths.hpp"
#include "core/files.hpp"
#include "tasks/metrics.hpp"

namespace lctx::reports {
namespace {

using json = nlohmann::json;

std::string basename_of(const std::string& p) {
  auto s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

std::string stem_of(const std::string& p) {
  std::string b = basename_of(p);
  auto d = b.find('.');
  return d == std::string::npos ? b : b.substr(0, d);
}

// Path components from the file stem upwards: "a/b/4096/pred/qa_1.jsonl" -> qa_1, pred, 4096, b, a.
std::vector<std::string> components_up(const std::string& path) {
  std::vector<std::string> out;
  std::string p = path;
  out.push_back(stem_of(p));
  auto s = p.find_last_of('/');
  while (s != std::string::npos && s > 0) {
    p = p.substr(0, s);
    s = p.find_last_of('/');
    std::string c = s == std::string::npos ? p : p.substr(s + 1);
    if (!c.empty() && c != "." && c != "..") out.push_back(c);
  }
  return out;
}

bool known_task(const std::string& t) { return suite_of_task(t) != nullptr || t.rfind("niah_", 0) == 0; }

// The catalogue name of a released long form (qa1_single-supporting-fact, qa1_4k_instruction_yes... -> qa1);
// other names unchanged.
std::string canonical_task(const std::string& t) {
  const SuiteInfo* s = suite_of_task(t);
  return s ? s->find(t)->name : t;
}

bool try_length(const std::string& s, int64_t& out) {
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  try {
    out = parse_length(s);
    return out > 0;
  } catch (const Error&) {
    return false;
  }
}

std::string str_field(const json& j, const char* k) {
  if (j.is_object() && j.contains(k) && j[k].is_string()) return j[k].get<std::string>();
  return "";
}

// A positive integer field (lengths), 0 when absent or not a positive integer below 2^62.
int64_t int_field(const json& j, const char* k) {
  if (!j.is_object() || !j.contains(k)) return 0;
  const json& v = j[k];
  if (v.is_number_integer() && !v.is_number_unsigned()) return std::max<int64_t>(0, v.get<int64_t>());
  if (v.is_number_unsigned()) return v.get<uint64_t>() < (uint64_t(1) << 62) ? int64_t(v.get<uint64_t>()) : 0;
  if (v.is_number_float() && v.get<double>() >= 1 && v.get<double>() < 4.6e18) return int64_t(v.get<double>());
  return 0;
}

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// RFC 4180 fields as pandas' to_csv writes them (quoted when needed, "" inside quotes); rows end at unquoted
// newlines (\r\n or \n). Empty lines are skipped, as pandas' read_csv does.
std::vector<std::vector<std::string>> parse_csv(const std::string& path, const std::string& data) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < data.size(); ++i) {
    char c = data[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < data.size() && data[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        row.push_back(std::move(field));
        rows.push_back(std::move(row));
      }
      row.clear();
      field.clear();
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  if (quoted) throw Error(path + ": unterminated quoted CSV field");
  if (any || !field.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

// pandas' read_csv default missing-value strings: BABILong's collect_results reads outputs with read_csv and
// fillna(''), so a model output that is exactly one of these counts as empty.
bool pandas_na(const std::string& s) {
  static const std::set<std::string> na = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                                           "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                                           "nan", "null"};
  return na.count(s) > 0;
}

// BABILong's result CSVs (scripts/run_model_on_babilong.py: pandas to_csv with an unnamed index column and
// target, output, question): each row becomes {index, target, output, question}.
void read_babilong_csv(const std::string& path, const std::function<void(int64_t, const json&)>& fn) {
  auto rows = parse_csv(path, read_file(path));
  if (rows.empty()) throw Error(path + ": empty CSV");
  const auto& head = rows.front();
  int ti = -1, oi = -1, qi = -1, ii = -1;
  for (size_t k = 0; k < head.size(); ++k) {
    if (head[k] == "target") ti = static_cast<int>(k);
    else if (head[k] == "output") oi = static_cast<int>(k);
    else if (head[k] == "question") qi = static_cast<int>(k);
    else if (head[k].empty() || head[k] == "index" || head[k] == "Unnamed: 0") ii = static_cast<int>(k);
  }
  if (ti < 0 || oi < 0 || qi < 0)
    throw Error(path + ": not a BABILong result CSV (want the columns target, output and question)");
  bool all_na = true;
  for (size_t r = 1; r < rows.size(); ++r)
    if (static_cast<size_t>(oi) < rows[r].size() && !pandas_na(rows[r][oi])) all_na = false;
  for (size_t r = 1; r < rows.size(); ++r) {
    const auto& row = rows[r];
    if (row.size() != head.size())
      throw Error(path + ":" + std::to_string(r + 1) + ": expected " + std::to_string(head.size()) + " CSV fields, got " +
                  std::to_string(row.size()));
    std::string out = row[oi];
    // pandas: a column of only missing values is float NaN, which collect_results turns into the string "nan".
    if (pandas_na(out)) out = all_na ? "nan" : "";
    json j = {{"target", row[ti]}, {"output", out}, {"question", row[qi]}};
    if (ii >= 0) j["index"] = row[ii];
    fn(static_cast<int64_t>(r + 1), j);
  }
}

struct FileContext {
  std::string path, task_from_path;
  int64_t length_from_path = 0;
};

FileContext file_context(const std::string& path) {
  FileContext fc;
  fc.path = path;
  auto comps = components_up(path);
  for (size_t i = 0; i < comps.size() && i < 2 && fc.task_from_path.empty(); ++i)
    if (known_task(comps[i])) fc.task_from_path = comps[i];
  // the stem ("4k" in lctx's DIR/suite/task/4k.jsonl; "qa1_4k_..." in BABILong's result files), then parents
  std::vector<std::string> cands;
  auto stem = comps.front();
  cands.push_back(stem);
  if (canonical_task(stem) != stem) {
    auto parts = split_list(stem, '_');
    if (parts.size() > 1) cands.push_back(parts[1]);
  }
  for (size_t i = 1; i < comps.size() && i <= 4; ++i) cands.push_back(comps[i]);
  for (auto& c : cands)
    if (try_length(c, fc.length_from_path)) break;
  return fc;
}

std::string where(const FileContext& fc, int64_t line) { return fc.path + ":" + std::to_string(line); }

}  // namespace

void apply_metric_option(ScoreOptions& o, const std::string& m) {
  if (m == "auto") {
    o.ruler_metric = "auto";
    o.babilong_metric = "babilong";
  } else if (m == "string_match_all" || m == "string_match_part") {
    o.ruler_metric = m;
  } else if (m == "babilong" || m == "babilong-strict") {
    o.babilong_metric = m;
  } else {
    throw Error("unknown metric '" + m +
                "' (known: auto, string_match_all, string_match_part, babilong, babilong-strict)");
  }
}

// Full precision, in each suite's own order of operations: RULER's evaluate.py computes sum / n * 100 (then
// rounds to 2 decimals for its CSV), BABILong's collect_results 100 * sum / n.
double ScoreCell::score() const {
  if (n == 0) return 0.0;
  return suite == "babilong" ? 100.0 * sum / static_cast<double>(n) : sum / static_cast<double>(n) * 100.0;
}

// Python's repr() of round(v, 2): what pandas writes for RULER's summary.csv ("100.0", "85.33", "0.0").
static std::string ruler_csv_number(double v) {
  // Python's repr is the shortest string that reads back as the same double, in fixed notation for
  // 1e-4 <= |x| < 1e16, with at least one decimal: "70.0", "85.33".
  const double r = round_to(v, 2);
  char buf[64];
  for (int d = 1; d <= 17; ++d) {
    std::snprintf(buf, sizeof buf, "%.*f", d, r);
    if (std::strtod(buf, nullptr) == r) break;
  }
  std::string s = buf;
  if (s == "-0.0") s = "0.0";
  return s;
}

ScoreSummary score_files(const std::vector<std::string>& files, const ScoreOptions& opts) {
  if (files.empty()) throw Error("no predictions files given");
  ScoreOptions check;
  apply_metric_option(check, opts.ruler_metric);
  apply_metric_option(check, opts.babilong_metric);
  if (!opts.task.empty() && !known_task(canonical_task(opts.task)))
    throw Error("--task: unknown task '" + opts.task + "' (RULER: niah_*, vt, cwe, fwe, qa_1, qa_2; BABILong: qa1-qa20)");
  int64_t forced_length = 0;
  if (!opts.length.empty()) forced_length = parse_length(opts.length);

  using Key = std::tuple<int, TaskOrder, int64_t, std::string, std::string>;  // rank, task, length, metric, suite
  std::map<Key, ScoreCell> cells;
  for (const auto& path : files) {
    FileContext fc = file_context(path);
    int64_t records = 0;
    auto handle = [&](int64_t line, const json& j) {
      if (!j.is_object()) throw Error(where(fc, line) + ": expected a JSON object");
      json meta = j.contains("lctx") && j["lctx"].is_object() ? j["lctx"] : json::object();
      if (meta.empty() && j.contains("others") && j["others"].is_object() && j["others"].contains("lctx") &&
          j["others"]["lctx"].is_object())
        meta = j["others"]["lctx"];  // RULER layout: call_api.py carries `others` into the predictions
      std::string task = opts.task;
      if (task.empty()) task = str_field(meta, "task");
      if (task.empty()) task = str_field(j, "task");
      if (task.empty()) task = fc.task_from_path;
      if (task.empty())
        throw Error(where(fc, line) + ": cannot tell the task (no lctx.task or task field, and the file name is "
                                      "not a task name); pass --task");
      task = canonical_task(task);
      if (!known_task(task))
        throw Error(where(fc, line) + ": unknown task '" + task.substr(0, 60) +
                    "' (RULER: niah_*, vt, cwe, fwe, qa_1, qa_2; BABILong: qa1-qa20); pass --task");
      std::string suite = str_field(meta, "suite");
      if (suite.empty()) suite = str_field(j, "suite");
      if (suite.empty()) suite = suite_of_task(task) ? suite_of_task(task)->name : suites().front()->name;

      // A length that is a number must be a count: a negative or fractional one is an error, never "unknown".
      auto length_field = [&](const json& o, const char* k) -> int64_t {
        if (o.is_object() && o.contains(k) && o[k].is_number()) {
          const json& v = o[k];
          const bool count = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0) ||
                             (v.is_number_float() && v.get<double>() >= 0 && v.get<double>() == std::floor(v.get<double>()));
          if (!count)
            throw Error(where(fc, line) + ": '" + k + "' must be a non-negative integer, got " + v.dump().substr(0, 40));
        }
        return int_field(o, k);
      };
      int64_t length = forced_length;
      if (!length) length = length_field(meta, "length");
      if (!length) length = length_field(meta, "target_length");  // lctx generate's RULER records
      if (!length && str_field(j, "schema").rfind("lctx.result", 0) == 0) length = length_field(j, "length");
      if (!length) length = fc.length_from_path;
      if (!length) length = length_field(j, "length");

      const bool babilong_style = j.contains("target");
      std::string pred;
      bool have_pred = false;
      for (const char* k : {"pred", "prediction", "output"}) {
        if (std::string(k) == "output" && !babilong_style) break;
        if (!j.contains(k)) continue;
        if (j[k].is_string()) pred = j[k].get<std::string>();
        else if (!j[k].is_null()) throw Error(where(fc, line) + ": '" + k + "' is not a string");
        have_pred = true;
        break;
      }
      if (!have_pred)
        throw Error(where(fc, line) + (babilong_style ? ": missing 'pred' (or 'output')" : ": missing 'pred'"));

      std::vector<std::string> refs;
      auto take_refs = [&](const json& v, const char* name) {
        if (v.is_string()) refs.push_back(v.get<std::string>());
        else if (v.is_array()) {
          for (auto& r : v) {
            if (!r.is_string()) throw Error(where(fc, line) + ": '" + name + "' must hold strings");
            refs.push_back(r.get<std::string>());
          }
        } else throw Error(where(fc, line) + ": '" + name + "' must be a string or a list of strings");
      };
      if (babilong_style) take_refs(j["target"], "target");
      else if (j.contains("outputs")) take_refs(j["outputs"], "outputs");
      else if (j.contains("reference")) take_refs(j["reference"], "reference");
      else throw Error(where(fc, line) + ": missing references ('outputs', 'reference' or 'target')");
      if (refs.empty()) throw Error(where(fc, line) + ": empty references");

      std::string metric;
      std::string question = str_field(j, "question");
      const std::string native = default_metric(suite, task);
      if (native == "babilong") {
        metric = opts.babilong_metric;
        if (!j.contains("question") || !j["question"].is_string())
          throw Error(where(fc, line) + ": missing 'question' (BABILong scoring excludes labels named in it)");
      } else {
        metric = opts.ruler_metric == "auto" ? native : opts.ruler_metric;
      }
      double s;
      try {
        s = score_prediction(metric, pred, refs, question, task);
      } catch (const Error& e) {
        throw Error(where(fc, line) + ": " + e.what());
      }
      Key key{suite_rank(suite), task_order(suite, task), length, metric, suite};
      ScoreCell& c = cells[key];
      if (c.n == 0) {
        c.suite = suite;
        c.task = task;
        c.length = length;
        c.metric = metric;
      }
      if (c.files.empty() || c.files.back() != path) c.files.push_back(path);
      c.n += 1;
      c.sum += s;
      if (ruler_postprocess(pred).empty()) c.nulls += 1;
      ++records;
    };
    if (ends_with(path, ".csv")) read_babilong_csv(path, handle);
    else read_jsonl(path, false, handle);
    if (records == 0) throw Error(path + ": no records");
  }
  ScoreSummary out;
  for (auto& kv : cells) out.cells.push_back(std::move(kv.second));
  return out;
}

namespace {

std::string length_label(int64_t l) { return l > 0 ? format_length(l) : "-"; }

struct SuiteView {
  std::string suite;
  std::vector<int64_t> lengths;
  std::vector<std::pair<std::string, std::string>> rows;  // task, metric (in order)
  std::map<std::pair<std::string, int64_t>, const ScoreCell*> cell;
};

std::vector<SuiteView> views(const ScoreSummary& s) {
  std::vector<SuiteView> out;
  for (const auto& c : s.cells) {
    if (out.empty() || out.back().suite != c.suite) out.push_back(SuiteView{c.suite, {}, {}, {}});
    auto& v = out.back();
    if (std::find(v.lengths.begin(), v.lengths.end(), c.length) == v.lengths.end()) v.lengths.push_back(c.length);
    std::pair<std::string, std::string> row{c.task, c.metric};
    if (std::find(v.rows.begin(), v.rows.end(), row) == v.rows.end()) v.rows.push_back(row);
    v.cell[{c.task + "\x1f" + c.metric, c.length}] = &c;
  }
  for (auto& v : out) std::sort(v.lengths.begin(), v.lengths.end());
  return out;
}

std::string pad(const std::string& s, size_t w, bool right = false) {
  if (s.size() >= w) return s;
  return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

}  // namespace

std::string format_score_table(const ScoreSummary& s) {
  std::string out;
  for (const auto& v : views(s)) {
    size_t tw = v.suite.size(), mw = 6;
    for (auto& r : v.rows) {
      tw = std::max(tw, r.first.size());
      mw = std::max(mw, r.second.size());
    }
    std::string head = pad(v.suite, tw) + "  " + pad("metric", mw);
    for (auto l : v.lengths) head += "  " + pad(length_label(l), 8, true);
    head += "  " + pad("nulls", 11, true);
    out += head + "\n";
    std::map<int64_t, std::pair<double, int>> avg;
    for (auto& r : v.rows) {
      std::string line = pad(r.first, tw) + "  " + pad(r.second, mw);
      int64_t nulls = 0, n = 0;
      for (auto l : v.lengths) {
        auto it = v.cell.find({r.first + "\x1f" + r.second, l});
        if (it == v.cell.end()) {
          line += "  " + pad("-", 8, true);
          continue;
        }
        const ScoreCell* c = it->second;
        line += "  " + pad(fixed(round_to(c->score(), 2)), 8, true);
        nulls += c->nulls;
        n += c->n;
        avg[l].first += c->sum / static_cast<double>(c->n) * 100.0;
        avg[l].second += 1;
      }
      line += "  " + pad(std::to_string(nulls) + "/" + std::to_string(n), 11, true);
      out += line + "\n";
    }
    if (v.rows.size() > 1) {
      std::string line = pad("average", tw) + "  " + pad("", mw);
      for (auto l : v.lengths)
        line += "  " + pad(avg.count(l) ? fixed(avg[l].first / avg[l].second) : "-", 8, true);
      out += line + "\n";
    }
    out += "\n";
  }
  return out;
}

json score_json(const ScoreSummary& s, const ScoreOptions& opts) {
  json results = json::array();
  for (const auto& c : s.cells) {
    results.push_back({{"suite", c.suite},
                       {"task", c.task},
                       {"length", c.length},
                       {"length_label", length_label(c.length)},
                       {"metric", c.metric},
                       {"score", c.score()},
                       {"n", c.n},
                       {"nulls", c.nulls},
                       {"files", c.files}});
  }
  json averages = json::array();
  for (const auto& v : views(s)) {
    for (auto l : v.lengths) {
      double sum = 0;
      int k = 0;
      for (auto& r : v.rows) {
        auto it = v.cell.find({r.first + "\x1f" + r.second, l});
        if (it == v.cell.end()) continue;
        sum += it->second->sum / static_cast<double>(it->second->n) * 100.0;
        ++k;
      }
      averages.push_back({{"suite", v.suite}, {"length", l}, {"length_label", length_label(l)},
                          {"score", sum / k}, {"tasks", k}});
    }
  }
  return {{"schema", "lctx.score/1"},
          {"ruler_metric", opts.ruler_metric},
          {"babilong_metric", opts.babilong_metric},
          {"results", results},
          {"averages", averages}};
}

std::string score_csv(const ScoreSummary& s) {
  std::map<std::string, std::set<int64_t>> per_task;
  for (auto& c : s.cells) per_task[c.suite + "/" + c.task].insert(c.length);
  bool one_length = true;
  for (auto& kv : per_task) one_length = one_length && kv.second.size() == 1;
  std::vector<std::string> names, scores, nulls;
  for (auto& c : s.cells) {
    std::string name = c.task;
    if (!one_length) name += "@" + length_label(c.length);
    if (c.metric == "babilong-strict") name += "(strict)";
    names.push_back(name);
    scores.push_back(ruler_csv_number(c.score()));
    nulls.push_back(std::to_string(c.nulls) + "/" + std::to_string(c.n));
  }
  std::string out;
  for (size_t i = 0; i <= names.size(); ++i) out += (i ? "," : "") + std::to_string(i);
  out += "\n";
  auto row = [&](const char* head, const std::vector<std::string>& v) {
    out += head;
    for (auto& x : v) out += "," + x;
    out += "\n";
  };
  row("Tasks", names);
  row("Score", scores);
  row("Nulls", nulls);
  return out;
}

}  // namespace lctx::reports
