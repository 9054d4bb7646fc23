#include "reports/common.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/error.hpp"
#include "core/files.hpp"

namespace lctx::reports {

const std::vector<std::string>& ruler_tasks() {
  static const std::vector<std::string> v = {"niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1",
                                             "niah_multikey_2", "niah_multikey_3", "niah_multivalue",
                                             "niah_multiquery", "vt", "cwe", "fwe", "qa_1", "qa_2"};
  return v;
}

const std::vector<std::string>& babilong_headline() {
  static const std::vector<std::string> v = {"qa1", "qa2", "qa3", "qa4", "qa5"};
  return v;
}

static int babilong_number(const std::string& task) {
  if (task.size() < 3 || task[0] != 'q' || task[1] != 'a') return -1;
  size_t i = 2;
  int n = 0;
  while (i < task.size() && std::isdigit(static_cast<unsigned char>(task[i])) && n < 1000) n = n * 10 + (task[i++] - '0');
  if (i == 2 || (i < task.size() && task[i] != '_')) return -1;
  return n;
}

bool is_babilong_task(const std::string& task) { return babilong_number(task) > 0; }

std::string ruler_metric_for(const std::string& task) {
  return task.rfind("qa", 0) == 0 ? "string_match_part" : "string_match_all";
}

TaskOrder task_order(const std::string& suite, const std::string& task) {
  if (suite == "babilong") {
    int n = babilong_number(task);
    return {n > 0 ? n : 100000, task};
  }
  auto& r = ruler_tasks();
  for (size_t i = 0; i < r.size(); ++i)
    if (r[i] == task) return {static_cast<int>(i), task};
  return {100000, task};
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

void read_jsonl(const std::string& path, bool ignore_incomplete_last,
                const std::function<void(int64_t, const nlohmann::json&)>& fn) {
  std::string data = read_file(path);
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    bool complete = nl != std::string::npos;
    if (!complete && ignore_incomplete_last) break;
    std::string line = data.substr(pos, complete ? nl - pos : std::string::npos);
    pos = complete ? nl + 1 : data.size();
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      std::string why = e.what();
      auto p = why.find("] ");
      if (p != std::string::npos) why = why.substr(p + 2);
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
