// Subcommand registry and the shared command-line driver of the two lctx executables.
//
// `lctx` (apps/lctx/main.cpp) holds the commands that never touch LibTorch (generate, score, report) and
// starts in a few milliseconds. The commands that run models (run, serve, train, train-eval) live in
// `lctx-torch` (apps/lctx/torch/main.cpp), installed next to `lctx`; `lctx` replaces itself with it (execv) when
// the first argument names one of them, so users type `lctx <command>` for everything.
#pragma once
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

namespace lctx::cli {

using Runner = std::function<int()>;
// Adds the subcommand's options to `app` and returns the function to run once parsing succeeded.
using Setup = std::function<Runner(CLI::App& app)>;

// Each cmd_*.cpp registers one subcommand with a static Command object.
struct Command {
  Command(std::string name, Setup setup);
  static std::vector<Command*>& all();
  std::string name, help;
  Setup setup;
};

// Every command: its name, its one-line help and whether it needs LibTorch (then it lives in lctx-torch).
// The only list of command names; `lctx --help` prints it whole in either executable.
struct CommandInfo {
  const char* name;
  const char* help;
  bool torch;
};
const std::vector<CommandInfo>& command_table();
const CommandInfo* find_command(std::string_view name);  // nullptr when unknown

// Parses argv against the registered commands and runs the chosen one. Errors print one line,
// "lctx: error: <message>", and return 1. `describe` turns an exception into that message (LibTorch's
// c10::Error has a shorter form than what()); nullptr: the first line of what().
int main(int argc, char** argv, std::string (*describe)(const std::exception&) = nullptr);

}  // namespace lctx::cli
