// `lctx run`: the grid (model x task x length x depth x sample) streamed from the generators into the models,
// scored, and appended to DIR/results.jsonl (docs/results-schema.md), resumable after any kill.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/builtin.hpp"
#include "harness/grid.hpp"
#include "harness/results.hpp"
#include "tasks/sample.hpp"

namespace lctx::harness {

// Every value already parsed and checked at the command line (apps/lctx/torch/cmd_run.cpp).
struct RunOptions {
  std::vector<std::string> models;   // --model (repeatable)
  TaskInputs in;                     // suite, tasks, tokenizer, haystack, templates, QA data
  std::vector<int64_t> lengths = {4096};
  std::vector<double> depths;        // empty: the generator's choice (null depth)
  int64_t samples = 10;
  uint64_t seed = 42;
  BuiltinOptions builtin;            // device, prefill block, K/V offload, pruned/full prefill, precision
  Shard shard;
  int concurrency = 4;               // openai models: requests in flight
  double timeout_s = 600;
  int retries = 3;
  double backoff_s = 1.0;
  int max_new = 0;                   // > 0 overrides the task's tokens_to_generate
  bool chat = false;
  bool quiet = false;                // no progress output
  std::string out;                   // --out DIR
  std::vector<std::string> argv;     // the command line, recorded in run.json
};

struct RunSummary {
  int64_t grid = 0;        // items in this shard
  int64_t skipped = 0;     // already in DIR/results*.jsonl
  int64_t written = 0;     // records written by this run
  int64_t failed = 0;      // remote items that failed after retries (no record written; a re-run retries them)
  std::string first_error;
  std::string results_path;
  double mean_score = 0;   // over the records written by this run
};

// Runs the grid: plan_run, then open_output, then execute. Throws Error for bad options or model failures;
// remote request failures are counted in `failed` (the CLI exits non-zero when any failed).
RunSummary run_benchmark(const RunOptions& opt);

// 1. What to run: the models, the generators and the grid items of this shard. Loads the tokenizer and corpus
// and checks every checkpoint's tokenizer before any sample is made.
struct RunPlan {
  std::vector<ModelSpec> models;
  std::vector<std::string> tasks;
  Resources res;
  std::map<std::string, std::unique_ptr<TaskGenerator>> generators;  // by task
  std::vector<GridItem> items;                                       // this shard's, in execution order
  bool wants_ids = false;                                            // some model reads token ids
};
RunPlan plan_run(const RunOptions& opt);

// 2. Where results go: checks that OUT holds results of the same settings and weights only, writes
// run.json (or run.shard-i-of-N.json), opens the append-only results file and reads the keys already done.
// The folder is locked first (RunLock: a second `lctx run` on the same --out fails with a one-line error instead
// of writing every record twice). Without a run file, the records' tokenizer and max_new are checked instead;
// a run file that is not a valid one is an error.
struct RunOutput {
  std::unique_ptr<RunLock> lock;  // held until the run ends (declared first: released last)
  std::unique_ptr<ResultStore> store;
  std::set<std::string> done;
};
RunOutput open_output(const RunOptions& opt, const RunPlan& plan);

// 3. The items not done yet, model by model and (task, length) group by group, through one Backend each.
// `open` makes the backend of a model (called once per model with work left); empty: open_backend.
using BackendFactory = std::function<std::unique_ptr<Backend>(const ModelSpec&)>;
RunSummary execute(const RunOptions& opt, const RunPlan& plan, RunOutput& out, const BackendFactory& open = {});

// The backend of one --model value: a BuiltinModel (opt.builtin) or an OpenAIClient (opt's HTTP settings).
std::unique_ptr<Backend> open_backend(const RunOptions& opt, const RunPlan& plan, const ModelSpec& m);

// The settings that change what a record means without appearing in its key (tokenizer, templates,
// haystack, QA data, max_new, chat): a results folder holds one setting only; run.json records it.
nlohmann::json run_settings(const RunOptions& opt, const std::string& tokenizer_hash);

// Teacher-forced exact match (the HSA authors' RULER scoring): true iff every answer token is the argmax given
// the prompt and the answer tokens before it. Greedy decoding emits exactly those argmaxes for as long as it
// agrees with the answer, so this is "the generated ids begin with the answer's ids" (argmax ties are broken
// the same way). `stopped`: generation ended at EOS (the argmax after the last generated token was EOS), not
// at its token budget. Returns false at the first disagreement or when an EOS came before the answer's end,
// nullopt when the budget ended generation first (undecided). The record's `teacher_forced` field.
std::optional<bool> teacher_forced_match(const std::vector<int32_t>& generated, const std::vector<int32_t>& answer,
                                         bool stopped);

// Content fingerprint (hex FNV-1a 64) of a built-in checkpoint folder: config.json and model.safetensors,
// read in 1 MiB blocks. A resumed run refuses a folder whose results came from other weights under the same
// path; `lctx train --init-from` records the starting weights with it.
std::string checkpoint_fingerprint(const std::string& dir);

}  // namespace lctx::harness
