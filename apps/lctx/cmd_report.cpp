// `lctx report DIR... --out OUT`: results.jsonl -> leaderboard.json, report.md, charts/*.svg, report.html.
#include <cstdio>
#include <memory>

#include "apps/lctx/command.hpp"
#include "apps/lctx/options.hpp"
#include "reports/report.hpp"
#include "core/error.hpp"

namespace {

struct Opts {
  std::vector<std::string> dirs;
  std::string out;
  double threshold = 85.0;
  std::string title = "lctx report";
  std::string score = "score";
};

lctx::cli::Command reg("report", [](CLI::App& app) {
  auto o = std::make_shared<Opts>();
  app.add_option("dirs", o->dirs, "Run folders holding results.jsonl or results.*.jsonl shards (or .jsonl files)")
      ->required();
  app.add_option("--out", o->out, "Output folder")->required();
  lctx::cli::add_number(app, "--threshold", o->threshold, 0, 100, "Accuracy (%) for the effective context length");
  app.add_option("--title", o->title, "Report title")->capture_default_str();
  app.add_option("--score", o->score,
                 "per-sample score to aggregate: score (the task metric) | teacher-forced (built-in models' "
                 "teacher-forced exact match)")
      ->capture_default_str();
  return [o]() -> int {
    lctx::reports::ReportOptions ro;
    ro.threshold = o->threshold;
    ro.title = o->title;
    ro.score = o->score;
    auto files = lctx::reports::write_report(o->dirs, o->out, ro);
    for (auto& f : files) std::printf("wrote %s\n", f.c_str());
    return 0;
  };
});

}  // namespace
