#include "reports/common.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/error.hpp"
#include "core/files.hpp"
#include "tasks/catalog.hpp"

namespace lctx::reports {

TaskOrder task_order(const std::string& suite, const std::string& task) {
  const SuiteInfo* s = find_suite(suite);
  const int r = s ? s->rank(task) : -1;
  return {r >= 0 ? r : 100000, task};
}

int suite_rank(const std::string& suite) {
  const auto& all = suites();
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i]->name == suite) return static_cast<int>(i);
  return static_cast<int>(all.size());
}

std::string suite_display(const std::string& suite) {
  const SuiteInfo* s = find_suite(suite);
  return s ? s->display : suite;
}

std::string default_metric(const std::string& suite, const std::string& task) {
  const SuiteInfo* s = find_suite(suite);
  if (s) {
    if (const TaskInfo* t = s->find(task)) return t->metric;
    const bool one_metric = !s->tasks.empty() && std::all_of(s->tasks.begin(), s->tasks.end(), [&](const TaskInfo& t) {
      return t.metric == s->tasks.front().metric;
    });
    if (one_metric) return s->tasks.front().metric;
  }
  return task.rfind("qa", 0) == 0 ? "string_match_part" : "string_match_all";
}

std::string fixed(double v, int decimals) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s == "-0.00" || s == "-0.0" || s == "-0") s = s.substr(1);
  return s;
}

double round_to(double v, int decimals) { return std::strtod(fixed(v, decimals).c_str(), nullptr); }

namespace {
// Records and predictions nest a few levels; a deeper line is refused while it is parsed, before recursive
// operations (copies, dumps, comparisons) could exhaust the stack on it.
constexpr int kMaxDepth = 64;
struct TooDeep : std::exception {};
nlohmann::json parse_line(const std::string& text) {
  return nlohmann::json::parse(text, [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxDepth) throw TooDeep();
    return true;
  });
}
}  // namespace

void read_jsonl(const std::string& path, bool ignore_incomplete_last,
                const std::function<void(int64_t, const nlohmann::json&)>& fn,
                const std::function<void(int64_t, const std::string&)>& on_invalid) {
  std::string data = read_file(path);
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    bool complete = nl != std::string::npos;
    if (!complete && ignore_incomplete_last) {
      // A last line without its newline is a record in the middle of being written (or torn by a kill),
      // unless it is a whole JSON object: a write cut just before its "\n" (kept, as `lctx run` keeps it).
      nlohmann::json j;
      try {
        j = parse_line(data.substr(pos));
      } catch (const std::exception&) {
        break;
      }
      if (j.is_object()) fn(line_no + 1, j);
      break;
    }
    std::string line = data.substr(pos, complete ? nl - pos : std::string::npos);
    pos = complete ? nl + 1 : data.size();
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json j;
    try {
      try {
        j = parse_line(line);
      } catch (const TooDeep&) {
        throw std::runtime_error("] nested deeper than " + std::to_string(kMaxDepth) + " levels");
      }
    } catch (const std::exception& e) {
      std::string why = e.what();
      auto p = why.find("] ");
      if (p != std::string::npos) why = why.substr(p + 2);
      if (on_invalid) {
        on_invalid(line_no, why);
        continue;
      }
      throw Error(path + ":" + std::to_string(line_no) + ": invalid JSON (" + why + ")");
    }
    fn(line_no, j);
  }
}

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace lctx::reports
