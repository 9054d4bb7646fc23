// `lctx report`: results.jsonl (docs/results-schema.md) -> leaderboard.json (schema lctx.leaderboard/1,
// reports/schema/leaderboard.schema.json), report.md, SVG charts and one self-contained report.html.
// Everything is derived from the records sorted by key, so a sharded run reports exactly like an unsharded one.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lctx::reports {

inline constexpr const char* kLeaderboardSchema = "lctx.leaderboard/1";

struct Record {
  std::string key, model, model_name, suite, task, metric, prediction;
  int64_t length = 0, index = 0, seed = 0;
  std::optional<double> depth;
  double score = 0;
  std::optional<double> teacher_forced;  // the record's teacher-forced exact match, when it has one
  int64_t prompt_tokens = 0;
  std::optional<double> prefill_s, decode_s, tokens_per_s, peak_device_mb, peak_host_mb;
  std::string device, tokenizer_hash, lctx_version, git_hash;
};

// Every DIR/results.jsonl and DIR/results.*.jsonl (shards), or a .jsonl file given directly. An incomplete last
// line is ignored; duplicate keys keep the first record (in argument, file-name and line order); the result is
// sorted by key. Errors (missing fields, bad JSON) name FILE:LINE.
std::vector<Record> load_results(const std::vector<std::string>& inputs, int64_t* duplicates = nullptr);
Record parse_record(const nlohmann::json& j, const std::string& where);

struct ReportOptions {
  double threshold = 85.0;       // effective length threshold (accuracy, 0-100)
  std::string title = "lctx report";
  // Which per-sample score to aggregate: "score" (the task's metric) or "teacher-forced" (each record's
  // `teacher_forced`; records without one are left out).
  std::string score = "score";
};

nlohmann::json build_leaderboard(const std::vector<Record>& records, const ReportOptions& opts);

struct Chart {
  std::string file;   // "accuracy_ruler.svg"
  std::string title;
  std::string svg;
};
std::vector<Chart> render_charts(const nlohmann::json& leaderboard);
std::string render_markdown(const nlohmann::json& leaderboard);
std::string render_html(const nlohmann::json& leaderboard, const std::vector<Chart>& charts);

// load -> build -> write leaderboard.json, report.md, charts/*.svg, report.html into out_dir. Returns the paths.
std::vector<std::string> write_report(const std::vector<std::string>& inputs, const std::string& out_dir,
                                      const ReportOptions& opts);

// Effective length: the largest length L such that the accuracy at L and at every shorter evaluated length is
// >= threshold; nullopt when the shortest length is already below it. `points` are (length, accuracy).
std::optional<int64_t> effective_length(std::vector<std::pair<int64_t, double>> points, double threshold);

}  // namespace lctx::reports
