// lctx serve: a built-in model behind an OpenAI-compatible HTTP API (completions + chat).
#include <cstdio>

#include "apps/lctx/command.hpp"
#include "apps/lctx/options.hpp"
#include "apps/lctx/torch/options.hpp"
#include "models/model.hpp"
#include "harness/serve.hpp"
#include "core/error.hpp"
#include "core/paths.hpp"
#include "tasks/tokenizer.hpp"

namespace {

struct Opts {
  std::string model, tokenizer;
  lctx::harness::BuiltinOptions builtin;
  lctx::harness::ServeOptions serve;
};

lctx::cli::Command reg("serve", [](CLI::App& app) {
  auto o = std::make_shared<Opts>();
  app.add_option("--model", o->model, lctx::cli::model_kind_list(":PATH"))->required();
  app.add_option("--host", o->serve.host, "address to listen on")->capture_default_str();
  app.add_option("--port", o->serve.port, "port (0: any free port)")->capture_default_str();
  lctx::cli::add_builtin_options(app, o->builtin);
  lctx::cli::add_tokenizer(app, o->tokenizer);
  app.add_option("--max-tokens-limit", o->serve.max_tokens_limit, "largest max_tokens accepted")
      ->capture_default_str();
  return [o]() -> int {
    lctx::models::configure_cpu_threads();
    auto spec = lctx::harness::parse_model_spec(o->model);
    if (!spec.builtin())
      throw lctx::Error("lctx serve serves built-in models only (" + lctx::cli::model_kind_list(":PATH") + ")");
    if (o->serve.port < 0 || o->serve.port > 65535) throw lctx::Error("--port must be in [0, 65535]");
    auto tok = lctx::Tokenizer::load(o->tokenizer.empty() ? lctx::default_tokenizer_path() : o->tokenizer);
    lctx::harness::BuiltinModel model(spec, tok, o->builtin);
    lctx::harness::serve(model, o->serve, [&](int port) {
      std::printf("lctx serve: %s (%s) on http://%s:%d/v1\n", spec.name.c_str(), model.device_name().c_str(),
                  o->serve.host.c_str(), port);
      std::fflush(stdout);
    });
    return 0;
  };
});

}  // namespace
