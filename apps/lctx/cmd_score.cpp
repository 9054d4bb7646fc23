// `lctx score FILES...`: score predictions files, print a task x length table, write summary JSON (and CSV).
#include <cstdio>
#include <memory>

#include "apps/lctx/command.hpp"
#include "reports/score.hpp"
#include "core/files.hpp"

namespace {

struct Opts {
  std::vector<std::string> files;
  std::string metric = "auto";
  std::string out, csv, task, length;
};

std::string dirname_of(const std::string& p) {
  auto s = p.find_last_of('/');
  if (s == std::string::npos) return ".";
  return s == 0 ? "/" : p.substr(0, s);
}

lctx::cli::Command reg("score", [](CLI::App& app) {
  auto o = std::make_shared<Opts>();
  app.add_option("files", o->files, "Predictions JSONL files (records + 'pred', or BABILong input/question/target + "
                                    "'pred'/'output')")->required();
  app.add_option("--metric", o->metric,
                 "auto (RULER: qa_* -> string_match_part, else string_match_all; BABILong: babilong), or a metric "
                 "for its suite: string_match_all, string_match_part, babilong, babilong-strict")
      ->capture_default_str();
  app.add_option("--out", o->out, "Summary JSON (default: summary.json next to the first input file)");
  app.add_option("--csv", o->csv, "Also write a RULER-like summary CSV (rows Tasks, Score, Nulls)");
  app.add_option("--task", o->task, "Task of every record (default: lctx.task / task field, else the file name)");
  app.add_option("--length", o->length, "Length of every record (default: lctx.length, else the path, e.g. 4k.jsonl)");
  return [o]() -> int {
    lctx::reports::ScoreOptions so;
    lctx::reports::apply_metric_option(so, o->metric);
    so.task = o->task;
    so.length = o->length;
    auto summary = lctx::reports::score_files(o->files, so);
    std::fputs(lctx::reports::format_score_table(summary).c_str(), stdout);
    std::string out = o->out.empty() ? dirname_of(o->files.front()) + "/summary.json" : o->out;
    lctx::write_file_atomic(out, lctx::reports::score_json(summary, so).dump(2) + "\n");
    std::printf("wrote %s\n", out.c_str());
    if (!o->csv.empty()) {
      lctx::write_file_atomic(o->csv, lctx::reports::score_csv(summary));
      std::printf("wrote %s\n", o->csv.c_str());
    }
    return 0;
  };
});

}  // namespace
