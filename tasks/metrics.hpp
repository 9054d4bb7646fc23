// Scoring, RULER- and BABILong-compatible. Per-sample scores are in [0, 1]; tables report x100.
#pragma once
#include <string>
#include <vector>

namespace lctx {

// RULER post-processing: strip, control characters [\x00-\x1f] -> '\n', strip again.
std::string ruler_postprocess(const std::string& pred);
// Fraction of references found (case-insensitive substring) in the post-processed prediction.
double ruler_string_match_all(const std::string& pred, const std::vector<std::string>& refs);
// 1 if any reference is a case-insensitive substring of the post-processed prediction.
double ruler_string_match_part(const std::string& pred, const std::vector<std::string>& refs);

// BABILong labels per task (qa1 ... qa20), as in BABILong's TASK_LABELS.
const std::vector<std::string>& babilong_labels(const std::string& task);
// BABILong's compare_answers semantics (first sentence, label substrings, question labels excluded,
// multi-answer qa8), quirks included: the default, so numbers match published ones.
bool babilong_compare(const std::string& target, const std::string& pred, const std::string& question,
                      const std::string& task);
// Corrected variant (--metric babilong-strict): whole-word label matching (fixes qa7 "none" vs "one",
// "no" inside "not"/"know"), tolerant of ", " in qa8/qa19 lists. Documented in docs/scoring.md.
bool babilong_compare_strict(const std::string& target, const std::string& pred, const std::string& question,
                             const std::string& task);

// Dispatcher used by `lctx score` and the harness. metric: "string_match_all" | "string_match_part" |
// "babilong" | "babilong-strict". Throws Error on an unknown metric.
double score_prediction(const std::string& metric, const std::string& pred, const std::vector<std::string>& refs,
                        const std::string& question, const std::string& task);

}  // namespace lctx
