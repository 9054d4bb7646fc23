// lctx: one binary, subcommands registered by apps/lctx/cmd_*.cpp (and torch/cmd_*.cpp with LibTorch).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <new>

#include "apps/lctx/command.hpp"
#include "core/error.hpp"
#include "core/version.hpp"
#ifdef LCTX_WITH_TORCH
#include <c10/util/Exception.h>
#endif

namespace lctx::cli {

Command::Command(std::string n, std::string h, Setup s) : name(std::move(n)), help(std::move(h)), setup(std::move(s)) {
  all().push_back(this);
}

std::vector<Command*>& Command::all() {
  static std::vector<Command*> v;
  return v;
}

}  // namespace lctx::cli

static std::string first_line(const std::string& s) {
  auto p = s.find('\n');
  return p == std::string::npos ? s : s.substr(0, p);
}

int main(int argc, char** argv) {
  using lctx::cli::Command;
  CLI::App app{"lctx: generate, run, score and report long-context benchmarks (RULER, BABILong)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lctx " + lctx::version_string() + " (" + lctx::git_hash() + ")");
  auto cmds = Command::all();
  std::sort(cmds.begin(), cmds.end(), [](Command* a, Command* b) { return a->name < b->name; });
  std::vector<std::pair<CLI::App*, lctx::cli::Runner>> runners;
  try {
    for (Command* c : cmds) {
      CLI::App* sub = app.add_subcommand(c->name, c->help);
      runners.emplace_back(sub, c->setup(*sub));
      // A single-valued option given twice keeps the last value (scripts append overrides to a base command
      // line); repeatable options (--model, lists) keep every value.
      for (CLI::Option* o : sub->get_options())
        if (o->get_items_expected_max() == 1 && o->get_expected_max() == 1 && !o->get_positional())
          o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
    return 2;
  } catch (const lctx::Error& e) {
    std::fprintf(stderr, "lctx: error: %s\n", first_line(e.what()).c_str());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "lctx: error: out of memory\n");
#ifdef LCTX_WITH_TORCH
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    if (msg.find("out of memory") != std::string::npos) msg = "out of memory on the device: " + msg;
    std::fprintf(stderr, "lctx: error: %s\n", first_line(msg).c_str());
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lctx: error: %s\n", first_line(e.what()).c_str());
  }
  std::fflush(stdout);
  return 1;
}
