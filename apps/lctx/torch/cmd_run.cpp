// lctx run: evaluate models on a RULER/BABILong grid, appending scored records to DIR/results.jsonl.
#include <cstdio>

#include "apps/lctx/command.hpp"
#include "models/model.hpp"
#include "harness/run.hpp"
#include "core/error.hpp"

namespace {

struct Opts {
  lctx::harness::RunOptions run;
  std::string seed = "42";
};

lctx::cli::Command reg("run", [](CLI::App& app) {
  auto o = std::make_shared<Opts>();
  auto& r = o->run;
  app.add_option("--model", r.models,
                 "hsa:PATH | swa:PATH | mamba:PATH | openai:URL#MODEL (repeatable)")->required();
  app.add_option("--suite", r.suite, "ruler | babilong")->capture_default_str();
  app.add_option("--tasks", r.tasks, "comma-separated task names, or all")->capture_default_str();
  app.add_option("--lengths", r.lengths, "comma-separated target lengths (4k,8k,128k,1m ...)")->capture_default_str();
  app.add_option("--depths", r.depths, "needle depths in percent for NIAH-style tasks (e.g. 0,25,50,75,100)");
  app.add_option("--samples", r.samples, "samples per (task, length, depth)")->capture_default_str();
  app.add_option("--seed", o->seed, "run seed")->capture_default_str();
  app.add_option("--device", r.device, "cpu | cuda | cuda:N (built-in models)")->capture_default_str();
  app.add_flag("--kv-offload", r.kv_offload, "HSA: keep chunk K/V in host memory");
  app.add_flag("--full-prefill", r.full_prefill,
               "compute every layer on every prompt position (default: exact receptive-field prefill)");
  app.add_option("--precision", r.precision, "HSA chunk memory storage: fp32 | bf16")->capture_default_str();
  app.add_option("--block", r.block, "prefill piece size in tokens (0: 4096 on the CPU, 65536 on CUDA)")
      ->capture_default_str();
  app.add_option("--tokenizer", r.tokenizer, "SentencePiece model (default: assets/tokenizer/lctx-8k.model)");
  app.add_option("--haystack", r.haystack, "haystack corpus folder");
  app.add_option("--templates", r.templates, "prompt template file replacing the built-in one");
  app.add_option("--qa-data", r.qa_data, "SQuAD/HotpotQA folder or file for the RULER qa tasks");
  app.add_option("--shard", r.shard, "run slice i of N of the grid (i/N)")->capture_default_str();
  app.add_option("--concurrency", r.concurrency, "openai models: requests in flight")->capture_default_str();
  app.add_option("--timeout", r.timeout_s, "openai models: seconds per request attempt")->capture_default_str();
  app.add_option("--retries", r.retries, "openai models: retries on timeouts, 429 and 5xx")->capture_default_str();
  app.add_option("--backoff", r.backoff_s, "openai models: first retry delay in seconds (doubles each retry)")
      ->capture_default_str();
  app.add_option("--max-new", r.max_new, "tokens to generate (default: the task's tokens_to_generate)");
  app.add_flag("--chat", r.chat, "openai models: use /chat/completions");
  app.add_flag("-q,--quiet", r.quiet, "no progress output");
  app.add_option("--out", r.out, "output folder (results.jsonl, run.json)")->required();
  return [o]() -> int {
    auto& r = o->run;
    try {
      size_t pos = 0;
      r.seed = std::stoull(o->seed, &pos);
      if (pos != o->seed.size()) throw std::invalid_argument("seed");
    } catch (const std::exception&) {
      throw lctx::Error("bad --seed '" + o->seed + "': expected a non-negative integer");
    }
    r.argv.clear();
    lctx::models::configure_cpu_threads();  // built-in models on the CPU: torch threads, BLAS pinned
    auto s = lctx::harness::run_benchmark(r);
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
