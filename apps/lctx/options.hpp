// Options shared by several commands, declared once. Each parses its value while the command line is read
// into a typed field, so the commands and the harness never see option strings; a bad value is a one-line
// "lctx: error: bad --NAME ..." and a non-zero exit. The options of the LibTorch commands only (device,
// shard, prefill) are in apps/lctx/torch/options.hpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tasks/sample.hpp"

namespace lctx::cli {

// --lengths 4k,8k,1m (at least one). `what` ends the help line ("target lengths in tokens ...").
CLI::Option* add_lengths(CLI::App& app, std::vector<int64_t>& out, const std::string& help);
// --depths 0,25,50 (percent, each in [0, 100]).
CLI::Option* add_depths(CLI::App& app, std::vector<double>& out, const std::string& help);
// --seed N (a non-negative integer below 2^64).
CLI::Option* add_seed(CLI::App& app, uint64_t& out, const std::string& help = "run seed");
// The inputs of the generators (lctx::TaskInputs): --suite, --tasks, --tokenizer, --haystack, --templates,
// --qa-data.
void add_task_inputs(CLI::App& app, TaskInputs& in);
// --tokenizer, --suite, --haystack alone (commands that take no task list).
CLI::Option* add_tokenizer(CLI::App& app, std::string& out);
CLI::Option* add_suite(CLI::App& app, std::string& out);
CLI::Option* add_haystack(CLI::App& app, std::string& out);

// The command line as given (argv[0] included), for metadata such as run.json. Set by cli::main.
const std::vector<std::string>& command_line();

}  // namespace lctx::cli
