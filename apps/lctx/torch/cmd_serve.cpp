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
  lctx::cli::add_int(app, "--port", o->serve.port, 0, 65535, "port (0: any free port)");
  lctx::cli::add_builtin_options(app, o->builtin);
  lctx::cli::add_tokenizer(app, o->tokenizer);
  lctx::cli::add_int(app, "--max-tokens-limit", o->serve.max_tokens_limit, 1, 1 << 20, "largest max_tokens accepted");
  return [o]() -> int {
    lctx::models::configure_cpu_threads();
    auto spec = lctx::harness::parse_model_spec(o->model);
    if (!spec.builtin())
      throw lctx::Error("lctx serve serves built-in models only (" + lctx::cli::model_kind_list(":PATH") + ")");
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
