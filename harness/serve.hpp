// `lctx serve`: a built-in model behind the OpenAI-compatible API (POST /v1/completions,
// POST /v1/chat/completions, GET /v1/models, GET /health). Greedy decoding only; requests are served one at a
// time by the model (others wait).
#pragma once
#include <functional>
#include <string>

#include "harness/builtin.hpp"

namespace lctx::harness {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8000;            // 0: any free port (the chosen one is passed to on_ready)
  int default_max_tokens = 16;
  int max_tokens_limit = 4096;
};

// Blocks until the server stops (SIGINT/SIGTERM end the process). on_ready(port) runs once listening.
// Throws Error when the address cannot be bound.
void serve(BuiltinModel& model, const ServeOptions& opt, const std::function<void(int)>& on_ready);

}  // namespace lctx::harness
