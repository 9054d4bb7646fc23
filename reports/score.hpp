// `lctx score`: scores predictions files (RULER-style, BABILong-style, lctx records or results.jsonl) per
// suite x task x length. See docs/scoring.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lctx::reports {

struct ScoreOptions {
  std::string ruler_metric = "auto";         // auto (qa_* -> string_match_part, else string_match_all) or a metric
  std::string babilong_metric = "babilong";  // babilong | babilong-strict
  std::string task;                          // force the task of every record ("" = infer)
  std::string length;                        // force the length of every record ("" = infer)
};

// Sets the options from one --metric value: "auto", a RULER metric or a BABILong metric. Throws Error.
void apply_metric_option(ScoreOptions& o, const std::string& metric);

struct ScoreCell {
  std::string suite, task, metric;
  int64_t length = 0;  // 0 when unknown
  int64_t n = 0, nulls = 0;
  double sum = 0;      // sum of per-sample scores in [0, 1], in file order
  std::vector<std::string> files;
  double score() const;  // sum / n * 100 at full precision (tables and CSV round to 2 decimals)
};

struct ScoreSummary {
  std::vector<ScoreCell> cells;  // sorted: suite (ruler, babilong, others), task order, length
};

// Reads and scores every file. Errors name FILE:LINE (invalid JSON, missing prediction/references/question).
ScoreSummary score_files(const std::vector<std::string>& files, const ScoreOptions& opts);

std::string format_score_table(const ScoreSummary& s);
nlohmann::json score_json(const ScoreSummary& s, const ScoreOptions& opts);
// RULER-like summary CSV: a header row of column numbers, then rows Tasks / Score / Nulls.
std::string score_csv(const ScoreSummary& s);

}  // namespace lctx::reports
