// RULER and BABILong scoring (see docs/scoring.md for the exact rules and where the two BABILong modes differ).
#include "tasks/metrics.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "tasks/catalog.hpp"
#include "tasks/unicode/casefold.hpp"

namespace lctx {
namespace {

// ---- UTF-8 helpers ----------------------------------------------------------------------------------------
// Python's str.strip()/str.lower() work on code points; predictions are UTF-8, so both are done on decoded code
// points here. Invalid bytes are kept as they are (treated as one opaque code point each).

struct Cp {
  uint32_t cp;   // code point, or 0xFFFFFFFF for an invalid byte
  size_t pos, len;
};

bool next_cp(const std::string& s, size_t i, Cp& out) {
  if (i >= s.size()) return false;
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    out = {0xFFFFFFFFu, i, 1};
    return true;
  }
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) {
    unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d >> 6) != 0x2) {
      out = {0xFFFFFFFFu, i, 1};
      return true;
    }
    cp = (cp << 6) | (d & 0x3F);
  }
  out = {cp, i, len};
  return true;
}

// Python's str.isspace() for the code points it covers.
bool py_space(uint32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20)) return true;
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

// Python's str.strip() (no arguments).
std::string py_strip(const std::string& s) {
  size_t begin = s.size(), end = 0;
  Cp c;
  for (size_t i = 0; next_cp(s, i, c); i += c.len) {
    if (py_space(c.cp)) continue;
    if (begin == s.size()) begin = c.pos;
    end = c.pos + c.len;
  }
  return begin >= end ? std::string() : s.substr(begin, end - begin);
}

// Python's str.lower(), every code point (generated tables, tasks/unicode/).
std::string lower(const std::string& s) { return py_lower(s); }

size_t cp_count(const std::string& s) {  // Python's len() of a str
  size_t n = 0;
  Cp c;
  for (size_t i = 0; next_cp(s, i, c); i += c.len) ++n;
  return n;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::string before(const std::string& s, const std::string& sep) {
  auto p = s.find(sep);
  return p == std::string::npos ? s : s.substr(0, p);
}

// ---- BABILong labels --------------------------------------------------------------------------------------

// The catalogue row of a BABILong task, by name or by a long bAbI name (qa1_single-supporting-fact).
const TaskInfo* babilong_task(const std::string& task) { return babilong_catalog().find(task); }

std::set<std::string> lowered_labels(const std::string& task) {
  std::set<std::string> out;
  for (auto& l : babilong_labels(task)) out.insert(lower(l));
  return out;
}

// BABILong's preprocess_output: lowercase, keep the text before the first '.', then before '<context>' and
// '<example>'. (The original also splits on 'Question' after lowercasing, which can never match: omitted.)
std::string babilong_preprocess(const std::string& pred) {
  std::string o = lower(pred);
  o = before(o, ".");
  o = before(o, "<context>");
  o = before(o, "<example>");
  return o;
}

// Whole-word occurrence: the characters around the match are not ASCII letters/digits and not part of a
// multi-byte UTF-8 sequence.
bool word_char(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return u >= 0x80 || (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u == '_';
}

bool contains_word(const std::string& hay, const std::string& needle) {
  if (needle.empty()) return false;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) {
    bool left = p == 0 || !word_char(hay[p - 1]);
    size_t e = p + needle.size();
    bool right = e >= hay.size() || !word_char(hay[e]);
    if (left && right) return true;
  }
  return false;
}

// ", " / " ," / " , " between list items -> ",".
std::string tighten_commas(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == ',') {
      while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
      out += ',';
      while (i + 1 < s.size() && (s[i + 1] == ' ' || s[i + 1] == '\t')) ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool is_list_task(const std::string& task) {
  const TaskInfo* t = babilong_task(task);
  return t && t->params.value("list_answer", false);
}

}  // namespace

// ---- RULER ------------------------------------------------------------------------------------------------

std::string ruler_postprocess(const std::string& pred) {
  std::string s = py_strip(pred);
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = '\n';
  return py_strip(s);
}

double ruler_string_match_all(const std::string& pred, const std::vector<std::string>& refs) {
  if (refs.empty()) throw Error("string_match_all: no references");
  std::string p = lower(ruler_postprocess(pred));
  double hits = 0;
  for (auto& r : refs)
    if (contains(p, lower(r))) hits += 1.0;
  return hits / static_cast<double>(refs.size());
}

double ruler_string_match_part(const std::string& pred, const std::vector<std::string>& refs) {
  if (refs.empty()) throw Error("string_match_part: no references");
  std::string p = lower(ruler_postprocess(pred));
  for (auto& r : refs)
    if (contains(p, lower(r))) return 1.0;
  return 0.0;
}

// ---- BABILong ---------------------------------------------------------------------------------------------

const std::vector<std::string>& babilong_labels(const std::string& task) {
  const TaskInfo* t = babilong_task(task);
  if (!t) {
    const auto& all = babilong_catalog().tasks;
    throw Error("no BABILong labels for task '" + task + "' (known: " + all.front().name + " ... " + all.back().name + ")");
  }
  // The catalogue keeps them as JSON; converted once per task.
  static const std::map<std::string, std::vector<std::string>> labels = [] {
    std::map<std::string, std::vector<std::string>> m;
    for (const auto& row : babilong_catalog().tasks) m[row.name] = row.params.at("labels").get<std::vector<std::string>>();
    return m;
  }();
  return labels.at(t->name);
}

bool babilong_compare(const std::string& target_in, const std::string& pred, const std::string& question,
                      const std::string& task) {
  const std::set<std::string> labels = lowered_labels(task);
  const std::string output = babilong_preprocess(pred);
  const std::string target = lower(target_in);
  const std::string q = lower(question);
  std::set<std::string> in_out;
  for (auto& l : labels)
    if (contains(output, l) && !contains(q, l)) in_out.insert(l);
  if (contains(target, ",") && cp_count(target) > 3) {  // qa8 lists ("apple,milk")
    std::vector<std::string> subs;
    size_t start = 0;
    for (;;) {
      auto p = target.find(',', start);
      subs.push_back(target.substr(start, p == std::string::npos ? std::string::npos : p - start));
      if (p == std::string::npos) break;
      start = p + 1;
    }
    for (auto& s : subs)
      if (!in_out.count(s)) return false;
    return in_out.size() == subs.size();
  }
  return in_out.count(target) == 1 && in_out.size() == 1;
}

bool babilong_compare_strict(const std::string& target_in, const std::string& pred, const std::string& question,
                             const std::string& task) {
  const std::set<std::string> labels = lowered_labels(task);
  const bool list_task = is_list_task(task);
  std::string output = babilong_preprocess(pred);
  std::string target = py_strip(lower(target_in));
  if (list_task) {
    output = tighten_commas(output);
    target = tighten_commas(target);
  }
  const std::string q = lower(question);
  std::set<std::string> in_out;
  for (auto& l : labels)
    if (contains_word(output, l) && !contains_word(q, l)) in_out.insert(l);
  // A target that is itself a label (qa19 "n,w", qa8 "nothing", ...) must be the only label found; otherwise a
  // comma list of labels (qa8 "apple,milk") must be found exactly, in any order.
  if (labels.count(target)) return in_out.size() == 1 && in_out.count(target) == 1;
  if (contains(target, ",")) {
    std::set<std::string> want;
    for (auto& s : split_list(target, ',')) want.insert(s);
    return !want.empty() && want == in_out;
  }
  return in_out.size() == 1 && in_out.count(target) == 1;
}

double score_prediction(const std::string& metric, const std::string& pred, const std::vector<std::string>& refs,
                        const std::string& question, const std::string& task) {
  if (metric == "string_match_all") return ruler_string_match_all(pred, refs);
  if (metric == "string_match_part") return ruler_string_match_part(pred, refs);
  if (metric == "babilong" || metric == "babilong-strict") {
    if (refs.empty()) throw Error(metric + ": no target");
    bool ok = metric == "babilong" ? babilong_compare(refs.front(), pred, question, task)
                                   : babilong_compare_strict(refs.front(), pred, question, task);
    return ok ? 1.0 : 0.0;
  }
  throw Error("unknown metric '" + metric + "' (known: string_match_all, string_match_part, babilong, babilong-strict)");
}

}  // namespace lctx
