// What the harness asks of a model, whatever runs it: complete one prompt greedily, with timings and memory.
// Built-in checkpoints (harness/builtin.hpp) and OpenAI-compatible servers (harness/openai.hpp) implement it;
// `lctx run` drives every backend with the same loop (harness/run.cpp).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace lctx {
struct Sample;
class Tokenizer;
}  // namespace lctx

namespace lctx::harness {

struct Completion {
  std::string text;                            // decoded output (not yet stripped)
  int64_t completion_tokens = -1;              // tokens generated (-1: unknown)
  std::optional<int64_t> server_prompt_tokens; // remote: usage.prompt_tokens reported by the server
  std::string finish_reason;                   // "stop" (EOS / stop string) or "length"
  double prefill_s = 0;                        // built-in: prompt push; remote: the whole request
  std::optional<double> decode_s;              // built-in: greedy decoding; remote: unknown
  std::optional<double> peak_device_mb;        // built-in: see docs/results-schema.md; remote: unknown
  int attempts = 1;                            // remote: HTTP attempts made (retries + 1)
  std::optional<std::vector<int32_t>> tokens;  // built-in: the generated token ids (EOS not included)
  // built-in: "pruned" (exact receptive-field prefill ran) | "full"; remote: unknown
  std::optional<std::string> prefill_path;
  // built-in: positions the prunable layers computed for the prompt, summed over those layers (HSA upper
  // layers, SWA layers; the full path: prompt tokens x those layers; Mamba: 0)
  std::optional<int64_t> prefill_upper_positions;
};

// One prompt failed for good while the backend as a whole still works (a remote request out of retries):
// the run counts it, writes no record, and goes on; a re-run retries it. Any other exception stops the run.
struct ItemFailure : Error {
  using Error::Error;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const std::string& name() const = 0;  // display name (checkpoint folder, served model)
  virtual std::string device() const = 0;       // "cpu", "cuda:0", "remote"
  // Whether prompts must come as token ids of the run's tokenizer (Sample::prompt_ids); else as text.
  virtual bool wants_ids() const = 0;
  // Prompts worth having in flight at once (1: one at a time, the next sample prepared meanwhile).
  virtual int parallelism() const = 0;
  // Greedy completion of the sample's prompt, at most max_new tokens. Thread-safe.
  virtual Completion complete(const Sample& sample, int max_new) = 0;
};

}  // namespace lctx::harness
