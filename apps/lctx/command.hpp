// Subcommand registry: each cmd_*.cpp registers one subcommand with a static Command object.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace lctx::cli {

using Runner = std::function<int()>;
// Adds the subcommand's options to `app` and returns the function to run once parsing succeeded.
using Setup = std::function<Runner(CLI::App& app)>;

struct Command {
  Command(std::string name, std::string help, Setup setup);
  static std::vector<Command*>& all();
  std::string name, help;
  Setup setup;
};

}  // namespace lctx::cli
