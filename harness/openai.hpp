// OpenAI-compatible HTTP client (cpp-httplib): POST {base}/completions, or {base}/chat/completions with chat,
// greedy (temperature 0), with timeouts and retries with exponential backoff on timeouts, connection errors,
// HTTP 429 and 5xx. Other 4xx fail at once. Thread-safe (one connection per call).
#pragma once
#include <atomic>
#include <string>

#include "harness/backend.hpp"
#include "core/error.hpp"

namespace lctx::harness {

struct OpenAIOptions {
  std::string base_url;      // e.g. http://127.0.0.1:8000/v1 (the part before /completions)
  std::string model;         // "model" field of the request
  bool chat = false;         // /chat/completions with one user message
  double timeout_s = 600;    // limit of one whole attempt (connect, send, answer)
  int retries = 3;           // extra attempts after the first
  double backoff_s = 1.0;    // wait before retry k (k = 1, 2, ...): backoff_s * 2^(k-1), capped at max_backoff_s
  double max_backoff_s = 60;
  std::string api_key;       // sent as "Authorization: Bearer ..." when not empty ($OPENAI_API_KEY by default)
  int concurrency = 4;       // requests in flight when `lctx run` drives it
};

// One request failed for good (after retries). The message names the URL, the reason and the attempts.
struct HttpError : ItemFailure {
  using ItemFailure::ItemFailure;
};

class OpenAIClient : public Backend {
 public:
  explicit OpenAIClient(OpenAIOptions opt);  // validates the URL; throws Error
  // Greedy completion of `prompt` with max_tokens = max_new. Throws HttpError.
  Completion complete(const std::string& prompt, int max_new) const;
  // Backend: the sample's prompt text.
  Completion complete(const Sample& sample, int max_new) override;
  const std::string& name() const override { return opt_.model; }
  std::string device() const override { return "remote"; }
  bool wants_ids() const override { return false; }
  int parallelism() const override { return opt_.concurrency; }
  const OpenAIOptions& options() const { return opt_; }
  std::string endpoint() const;  // full URL of the endpoint used

 private:
  OpenAIOptions opt_;
  std::string scheme_host_port_, path_prefix_;
  mutable std::atomic<bool> warned_usage_{false};
};

}  // namespace lctx::harness
