// lctx run: evaluate models on a RULER/BABILong grid, appending scored records to DIR/results.jsonl.
#include <cstdio>

#include "apps/lctx/command.hpp"
#include "apps/lctx/options.hpp"
#include "apps/lctx/torch/options.hpp"
#include "core/error.hpp"
#include "harness/run.hpp"
#include "models/model.hpp"

namespace {

lctx::cli::Command reg("run", [](CLI::App& app) {
  auto r = std::make_shared<lctx::harness::RunOptions>();
  app.add_option("--model", r->models, lctx::cli::model_kind_list(":PATH") + " | openai:URL#MODEL (repeatable)")
      ->required();
  lctx::cli::add_task_inputs(app, r->in);
  lctx::cli::add_lengths(app, r->lengths, "comma-separated target lengths (4k,8k,128k,1m ...; default 4k)");
  lctx::cli::add_depths(app, r->depths, "needle depths in percent for NIAH-style tasks (e.g. 0,25,50,75,100)");
  lctx::cli::add_int(app, "--samples", r->samples, 1, lctx::cli::kMaxSamples, "samples per (task, length, depth)");
  lctx::cli::add_seed(app, r->seed);
  lctx::cli::add_builtin_options(app, r->builtin);
  lctx::cli::add_shard(app, r->shard);
  lctx::cli::add_int(app, "--concurrency", r->concurrency, 1, 1024, "openai models: requests in flight");
  lctx::cli::add_number(app, "--timeout", r->timeout_s, 0.001, 86400,
                        "openai models: seconds per request attempt (the whole attempt, connect to last byte)");
  lctx::cli::add_int(app, "--retries", r->retries, 0, 100, "openai models: retries on timeouts, 429 and 5xx");
  lctx::cli::add_number(app, "--backoff", r->backoff_s, 0, 3600,
                        "openai models: first retry delay in seconds (doubles each retry)");
  lctx::cli::add_int(app, "--max-new", r->max_new, 0, 1 << 20,
                     "tokens to generate (0: the task's tokens_to_generate)");
  app.add_flag("--chat", r->chat, "openai models: use /chat/completions");
  app.add_flag("-q,--quiet", r->quiet, "no progress output");
  app.add_option("--out", r->out, "output folder (results.jsonl, run.json)")->required();
  return [r]() -> int {
    r->argv = lctx::cli::command_line();
    lctx::models::configure_cpu_threads();  // built-in models on the CPU: torch threads, BLAS pinned
    auto s = lctx::harness::run_benchmark(*r);
    std::printf("%s: %lld items, %lld already done, %lld written, %lld failed; mean score of new records %.4f\n",
                s.results_path.c_str(), static_cast<long long>(s.grid), static_cast<long long>(s.skipped),
                static_cast<long long>(s.written), static_cast<long long>(s.failed), s.mean_score);
    std::fflush(stdout);
    if (s.failed > 0)
      throw lctx::Error(std::to_string(s.failed) + " item(s) failed; re-run the same command to retry them (first: " +
                        s.first_error + ")");
    return 0;
  };
});

}  // namespace
