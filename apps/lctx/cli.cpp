#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "apps/lctx/command.hpp"
#include "apps/lctx/options.hpp"
#include "core/error.hpp"
#include "core/version.hpp"

namespace lctx::cli {

const std::vector<CommandInfo>& command_table() {
  static const std::vector<CommandInfo> t = {
      {"generate", "Generate RULER / BABILong samples as JSONL files", false},
      {"report", "Aggregate results into leaderboard.json, Markdown tables, SVG charts and HTML", false},
      {"run", "Run models on a benchmark grid (resumable; results.jsonl)", true},
      {"score", "Score predictions JSONL files (RULER string_match_all/part, BABILong)", false},
      {"serve", "Serve a built-in model over the OpenAI-compatible API", true},
      {"train", "Train a built-in model on the lctx data mixture", true},
      {"train-eval", "Greedy accuracy of a checkpoint on held-out samples of one task", true},
  };
  return t;
}

const CommandInfo* find_command(std::string_view name) {
  for (const auto& c : command_table())
    if (name == c.name) return &c;
  return nullptr;
}

Command::Command(std::string n, Setup s) : name(std::move(n)), setup(std::move(s)) {
  const CommandInfo* info = find_command(name);
  // A registration without a table row is a programming error caught by the first run of any test.
  if (!info) {
    std::fprintf(stderr, "lctx: internal error: command '%s' is missing from command_table()\n", name.c_str());
    std::abort();
  }
  help = info->help;
  all().push_back(this);
}

std::vector<Command*>& Command::all() {
  static std::vector<Command*> v;
  return v;
}

static std::string first_line(const std::string& s) {
  auto p = s.find('\n');
  return p == std::string::npos ? s : s.substr(0, p);
}

static std::vector<std::string>& stored_command_line() {
  static std::vector<std::string> v;
  return v;
}

const std::vector<std::string>& command_line() { return stored_command_line(); }

int main(int argc, char** argv, std::string (*describe)(const std::exception&)) {
  stored_command_line().assign(argv, argv + argc);
  CLI::App app{"lctx: generate, run, score and report long-context benchmarks (RULER, BABILong)", "lctx"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lctx " + lctx::version_string() + " (" + lctx::git_hash() + ")");
  std::vector<std::pair<CLI::App*, Runner>> runners;
  try {
    for (const CommandInfo& info : command_table()) {
      auto it = std::find_if(Command::all().begin(), Command::all().end(),
                             [&](Command* c) { return c->name == info.name; });
      CLI::App* sub = app.add_subcommand(info.name, info.help);
      if (it == Command::all().end()) {
        // Listed for --help; it lives in the other executable.
        const std::string name = info.name;
        sub->allow_extras();
        runners.emplace_back(sub, [name]() -> int {
          throw Error("'" + name + "' is not part of this executable; run it as `lctx " + name + "`");
        });
        continue;
      }
      runners.emplace_back(sub, (*it)->setup(*sub));
      // A single-valued option given twice keeps the last value (scripts append overrides to a base command
      // line); repeatable options (--model, lists) keep every value.
      for (CLI::Option* o : sub->get_options())
        if (o->get_items_expected_max() == 1 && o->get_expected_max() == 1 && !o->get_positional())
          o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      // --help and --version print as CLI11 formats them; a parse error is one line like every other error.
      if (e.get_exit_code() == 0) return app.exit(e);
      std::string cmd;
      for (auto& [sub, run] : runners)
        if (sub->parsed()) cmd = " " + sub->get_name();
      std::fprintf(stderr, "lctx: error: %s (see lctx%s --help)\n", first_line(e.what()).c_str(), cmd.c_str());
      return 2;
    }
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
    return 2;
  } catch (const lctx::Error& e) {
    std::fprintf(stderr, "lctx: error: %s\n", first_line(e.what()).c_str());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "lctx: error: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lctx: error: %s\n", first_line(describe ? describe(e) : e.what()).c_str());
  }
  std::fflush(stdout);
  return 1;
}

}  // namespace lctx::cli
