// Small helpers shared by `lctx score` and `lctx report`: task order, number formatting, JSONL reading.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lctx::reports {

// Sort key for a task inside its suite: RULER's 13 tasks in the paper's order, BABILong qa1..qa20 by number,
// anything else after them by name.
struct TaskOrder {
  int rank;
  std::string name;
  bool operator<(const TaskOrder& o) const { return rank != o.rank ? rank < o.rank : name < o.name; }
};
TaskOrder task_order(const std::string& suite, const std::string& task);
// Canonical task lists (the columns the suite averages are defined over).
const std::vector<std::string>& ruler_tasks();          // 13 tasks
const std::vector<std::string>& babilong_headline();    // qa1..qa5
// "qa3" or "qa3_two-supporting-facts" -> true
bool is_babilong_task(const std::string& task);
// RULER metric by task family: qa_* -> string_match_part, else string_match_all.
std::string ruler_metric_for(const std::string& task);

// printf("%.*f") of v: deterministic text for tables, CSV and SVG.
std::string fixed(double v, int decimals = 2);
// v rounded to `decimals` places the way Python's round() does on the printed value (used for x100 scores).
double round_to(double v, int decimals = 2);

// Reads a JSONL file line by line. Calls `fn(line_number, json)` for each complete non-empty line. A last line
// without a trailing newline is skipped when `ignore_incomplete_last` (a writer may be in the middle of it),
// else parsed. A line that is not valid JSON throws Error("FILE:LINE: invalid JSON (...)").
void read_jsonl(const std::string& path, bool ignore_incomplete_last,
                const std::function<void(int64_t, const nlohmann::json&)>& fn);

// HTML/XML text escaping (&, <, >, ", ').
std::string xml_escape(const std::string& s);

}  // namespace lctx::reports
