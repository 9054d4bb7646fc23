// What the harness asks of a model: complete one prompt greedily, with timings and memory.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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

}  // namespace lctx::harness
