// `lctx run`: the grid (model x task x length x depth x sample) streamed from the generators into the models,
// scored, and appended to DIR/results.jsonl (docs/results-schema.md), resumable after any kill.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lctx::harness {

struct RunOptions {
  std::vector<std::string> models;   // --model (repeatable)
  std::string suite = "ruler";
  std::string tasks = "all";
  std::string lengths = "4k";
  std::string depths;                // "" = generator's choice (null depth); else CSV of percents
  int64_t samples = 10;
  uint64_t seed = 42;
  std::string device = "cpu";
  bool kv_offload = false;
  bool full_prefill = false;         // --full-prefill: every layer on every prompt position (default: pruned)
  std::string precision = "fp32";    // --precision: HSA chunk memory storage (fp32 | bf16)
  int64_t block = 0;                 // prefill piece size (0: 4096 on the CPU, 65536 on CUDA)
  std::string tokenizer;             // "" = the default tokenizer
  std::string haystack;              // "" = the default corpus folder
  std::string templates;
  std::string qa_data;
  std::string shard = "0/1";
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

// Runs the grid. Throws Error for bad options or model failures; remote request failures are counted in
// `failed` (the CLI exits non-zero when any failed).
RunSummary run_benchmark(const RunOptions& opt);

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
