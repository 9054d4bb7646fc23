// The RULER catalogue: one row per task. Adding a task is one row here plus, for a new family, one generator
// file (docs/adding-a-task.md). `family` picks the generator (tasks/ruler/ruler.cpp maps families to
// factories); `params` is what that generator reads:
//   niah   haystack (noise | essay | needle), key_type and value_type (words | numbers | uuids), keys, values,
//          queries (needles to place and ask for)
//   qa     dataset (squad | hotpotqa)
//   niah_ids  haystack (essay): a code of 7 vocabulary tokens in corpus prose (tasks/ruler/niah_ids.cpp)
//   every  template: the section of tasks/templates/ruler.json with the prompt text; slack: how many tokens
//          below the budget a prompt may end (default 32)
#include "tasks/catalog.hpp"

namespace lctx {

namespace {

TaskInfo niah(const char* name, const char* haystack, const char* key, const char* value, int keys, int values,
              int queries, int64_t min_length, int slack = 32) {
  return {name, "niah",
          {{"template", "niah"}, {"haystack", haystack}, {"key_type", key}, {"value_type", value}, {"keys", keys},
           {"values", values}, {"queries", queries}, {"slack", slack}},
          min_length, 128, "string_match_all", true, true, "", ""};
}

TaskInfo row(const char* name, const char* family, nlohmann::json params, int64_t min_length, int ttg,
             const char* metric, bool depth = false, const char* needs = "") {
  params["template"] = params.value("template", std::string(name));
  if (!params.contains("slack")) params["slack"] = 32;
  return {name, family, std::move(params), min_length, ttg, metric, depth, true, "", needs};
}

}  // namespace

const SuiteInfo& ruler_catalog() {
  // Single-needle tasks fit in 384 tokens (512 with a UUID value), so that short contexts can train and test
  // the tiny built-in models; multi-needle tasks need room for several needles.
  static const SuiteInfo s{
      "ruler",
      "RULER",
      "",
      {
          niah("niah_single_1", "noise", "words", "numbers", 1, 1, 1, 384),
          niah("niah_single_2", "essay", "words", "numbers", 1, 1, 1, 384),
          niah("niah_single_3", "essay", "words", "uuids", 1, 1, 1, 512),
          niah("niah_multikey_1", "essay", "words", "numbers", 4, 1, 1, 1024),
          niah("niah_multikey_2", "needle", "words", "numbers", 1, 1, 1, 1024),
          niah("niah_multikey_3", "needle", "uuids", "uuids", 1, 1, 1, 1024, 48),
          niah("niah_multivalue", "essay", "words", "numbers", 1, 4, 1, 1024),
          niah("niah_multiquery", "essay", "words", "numbers", 1, 1, 4, 1024),
          row("vt", "variable_tracking", nlohmann::json::object(), 1024, 30, "string_match_all"),
          row("cwe", "common_words", nlohmann::json::object(), 2048, 120, "string_match_all"),
          row("fwe", "frequent_words", nlohmann::json::object(), 1024, 50, "string_match_all"),
          row("qa_1", "qa", {{"template", "qa"}, {"dataset", "squad"}}, 2048, 32, "string_match_part", true, "qa-data"),
          row("qa_2", "qa", {{"template", "qa"}, {"dataset", "hotpotqa"}}, 2048, 32, "string_match_part", true, "qa-data"),
          // The HSA authors' single needle (a 7-token code in corpus prose); outside RULER's average.
          []() {
            TaskInfo t = row("niah_single_ids", "niah_ids", {{"template", "niah_ids"}, {"haystack", "essay"}}, 384, 32,
                             "string_match_all", true);
            t.headline = false;
            return t;
          }(),
      }};
  return s;
}

}  // namespace lctx
