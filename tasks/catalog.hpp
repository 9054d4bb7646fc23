// The task catalogues: one table per suite (tasks/ruler/catalog.cpp, tasks/babilong/catalog.cpp), the only
// place where a task is named. Generators, the scorer, the harness and the reports read their facts from here:
// which generator family builds the task and with which parameters, the shortest length, how many tokens the
// model answers with, the metric, whether fixed depths apply, and whether the task counts in the suite average.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lctx {

struct TaskInfo {
  std::string name;            // as users type it in --tasks
  std::string family;          // the generator that builds it (one generator file per family)
  nlohmann::json params;       // the family's parameters for this task (an object)
  int64_t min_length = 0;      // shortest target length in tokens
  int tokens_to_generate = 0;  // answer budget (RULER: counted inside the target length)
  std::string metric;          // string_match_all | string_match_part | babilong
  bool depth = false;          // fixed needle/fact depths (--depths) apply
  bool headline = false;       // counted in the suite average of reports
  std::string title;           // long name ("single-supporting-fact"); "" when the task has none
  std::string needs;           // an input the task cannot do without ("qa-data"), else ""

  // A task matches its name and, when it has a title, its name followed by "_" and anything (the released
  // file and folder names of bAbI and BABILong).
  bool matches(std::string_view task) const;
};

struct SuiteInfo {
  std::string name;            // "ruler"
  std::string display;         // "RULER"
  std::string headline_label;  // how reports name the headline set ("qa1-qa5"); "" = "<N> tasks"
  std::vector<TaskInfo> tasks; // in canonical order (reports sort by it)

  std::vector<std::string> names() const;
  std::vector<std::string> headline() const;
  const TaskInfo* find(std::string_view task) const;  // nullptr when unknown
  const TaskInfo& at(std::string_view task) const;    // throws Error("unknown task 'x' for suite s (known: ...)")
  int rank(std::string_view task) const;              // position in the catalogue, or -1
};

// Every suite, in report order.
const std::vector<const SuiteInfo*>& suites();
std::vector<std::string> suite_names();
const SuiteInfo* find_suite(std::string_view suite);   // nullptr when unknown
const SuiteInfo& suite_info(std::string_view suite);   // throws Error("unknown suite 'x' (known: ruler, babilong)")
// The suite whose catalogue holds `task` (first in report order), or nullptr.
const SuiteInfo* suite_of_task(std::string_view task);

// Defined by each suite's catalogue file.
const SuiteInfo& ruler_catalog();
const SuiteInfo& babilong_catalog();

}  // namespace lctx
