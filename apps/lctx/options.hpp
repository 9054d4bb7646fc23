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
// --seed N: an integer in [0, 2^63) (seeds with bit 63 set are reserved for training samples,
// harness/train_data.hpp), so "-1" is an error, never 2^64 - 1.
CLI::Option* add_seed(CLI::App& app, uint64_t& out, const std::string& help = "run seed");
// The inputs of the generators (lctx::TaskInputs): --suite, --tasks, --tokenizer, --haystack, --templates,
// --qa-data.
void add_task_inputs(CLI::App& app, TaskInputs& in);
// --tokenizer, --suite, --haystack alone (commands that take no task list).
CLI::Option* add_tokenizer(CLI::App& app, std::string& out);
CLI::Option* add_suite(CLI::App& app, std::string& out);
CLI::Option* add_haystack(CLI::App& app, std::string& out);

// Upper bounds of the counts every command shares: samples per grid cell (a million 4K samples is ~16 GB of
// JSONL; a typo such as 99999999999 would only fail when the disk fills) and worker threads.
constexpr int64_t kMaxSamples = 1000000;
constexpr int kMaxThreads = 1024;

// A numeric option whose value must be a finite number in [lo, hi] (integers: no fraction, no overflow). Any
// other value is a one-line error naming the option, the range and the value ("--threads must be an integer in
// [0, 1024], got '-1'"). `out` keeps its default when the option is absent; the help line shows it.
CLI::Option* add_int(CLI::App& app, const std::string& name, int64_t& out, int64_t lo, int64_t hi,
                     const std::string& help);
CLI::Option* add_int(CLI::App& app, const std::string& name, int& out, int lo, int hi, const std::string& help);
CLI::Option* add_number(CLI::App& app, const std::string& name, double& out, double lo, double hi,
                        const std::string& help);

// The command line as given (argv[0] included), for metadata such as run.json. Set by cli::main.
const std::vector<std::string>& command_line();

}  // namespace lctx::cli
