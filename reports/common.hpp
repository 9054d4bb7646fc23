// Small helpers shared by `lctx score` and `lctx report`: task order, number formatting, JSONL reading.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lctx::reports {

// Sort key for a task inside its suite: the catalogue's order (tasks/catalog.hpp), anything else after it
// by name.
struct TaskOrder {
  int rank;
  std::string name;
  bool operator<(const TaskOrder& o) const { return rank != o.rank ? rank < o.rank : name < o.name; }
};
TaskOrder task_order(const std::string& suite, const std::string& task);
// Rank of a suite in reports: the catalogue's order, unknown suites after it.
int suite_rank(const std::string& suite);
// How reports title a suite: the catalogue's display name ("RULER"), else the name as given.
std::string suite_display(const std::string& suite);
// The metric a task is scored with by default: its catalogue metric; for a task the catalogue does not know,
// the metric its suite uses throughout (BABILong), else string_match_part for names starting with "qa" and
// string_match_all otherwise (RULER's rule by family).
std::string default_metric(const std::string& suite, const std::string& task);

// printf("%.*f") of v: deterministic text for tables, CSV and SVG.
std::string fixed(double v, int decimals = 2);
// v rounded to `decimals` places the way Python's round() does on the printed value (used for x100 scores).
double round_to(double v, int decimals = 2);

// Reads a JSONL file line by line. Calls `fn(line_number, json)` for each complete non-empty line. A last line
// without a trailing newline, when `ignore_incomplete_last`, is taken only if it is a whole JSON object (else a
// writer may be in the middle of it, and it is skipped); otherwise it is parsed like the others. A line that is
// not valid JSON calls `on_invalid(line_number, reason)` when given, else throws
// Error("FILE:LINE: invalid JSON (...)").
void read_jsonl(const std::string& path, bool ignore_incomplete_last,
                const std::function<void(int64_t, const nlohmann::json&)>& fn,
                const std::function<void(int64_t, const std::string&)>& on_invalid = {});

// HTML/XML text escaping (&, <, >, ", ').
std::string xml_escape(const std::string& s);

}  // namespace lctx::reports
