// Options of the LibTorch commands, declared once (the shared torch-free ones are in apps/lctx/options.hpp).
// Each parses its value while the command line is read; a bad value is a one-line lctx error.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/error.hpp"
#include "harness/builtin.hpp"
#include "harness/grid.hpp"
#include "models/device.hpp"
#include "models/model.hpp"

namespace lctx::cli {

// --device cpu | cuda | cuda:N, checked against the devices present.
inline CLI::Option* add_device(CLI::App& app, c10::Device& out) {
  return app.add_option_function<std::string>(
      "--device", [&out](const std::string& s) { out = models::parse_device(s); }, "cpu | cuda | cuda:N (default cpu)");
}

// How a built-in model runs (lctx run, lctx serve, lctx train-eval): --device, --block, --kv-offload,
// --full-prefill, --precision. `block_help` says what --block 0 means for the command.
inline void add_builtin_options(CLI::App& app, harness::BuiltinOptions& b,
                                const std::string& block_help = "0: 4096 on the CPU, 65536 on CUDA") {
  add_device(app, b.device);
  app.add_option_function<int64_t>(
         "--block",
         [&b, block_help](int64_t v) {
           if (v < 0) throw Error("--block must be >= 0 (" + block_help + "), got " + std::to_string(v));
           b.block = v;
         },
         "prefill piece size in tokens (" + block_help + ")")
      ->default_str(std::to_string(b.block));
  app.add_flag("--kv-offload", b.kv_offload, "HSA: keep chunk K/V in host memory");
  app.add_flag_function(
      "--full-prefill", [&b](int64_t) { b.prune = false; },
      "compute every layer on every prompt position (default: exact receptive-field prefill)");
  app.add_option_function<std::string>(
         "--precision",
         [&b](const std::string& s) {
           if (s != "fp32" && s != "bf16") throw Error("--precision must be fp32 or bf16, got '" + s + "'");
           b.precision = s;
         },
         "HSA chunk memory storage: fp32 | bf16")
      ->default_str(b.precision);
}

// --shard i/N.
inline CLI::Option* add_shard(CLI::App& app, harness::Shard& out) {
  return app.add_option_function<std::string>(
      "--shard",
      [&out](const std::string& s) {
        auto [i, n] = harness::parse_shard(s);
        out = harness::Shard{i, n};
      },
      "run slice i of N of the grid (i/N, default 0/1)");
}

// models::model_kinds(), the built-in ones first (hsa, swa, mamba), then registered ones by name.
inline std::vector<std::string> ordered_model_kinds() {
  std::vector<std::string> out, rest;
  const auto kinds = models::model_kinds();
  for (const char* k : {"hsa", "swa", "mamba"})
    if (std::find(kinds.begin(), kinds.end(), k) != kinds.end()) out.push_back(k);
  for (const auto& k : kinds)
    if (std::find(out.begin(), out.end(), k) == out.end()) rest.push_back(k);
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

// "hsa:PATH | swa:PATH | mamba:PATH" (with suffix ":PATH"), for help lines.
inline std::string model_kind_list(const std::string& suffix = "") {
  std::string s;
  for (const auto& k : ordered_model_kinds()) s += (s.empty() ? "" : " | ") + k + suffix;
  return s;
}

// "hsa, swa or mamba", for messages.
inline std::string model_kind_phrase() {
  const auto k = ordered_model_kinds();
  std::string s;
  for (size_t i = 0; i < k.size(); ++i) s += (i == 0 ? "" : i + 1 == k.size() ? " or " : ", ") + k[i];
  return s;
}

}  // namespace lctx::cli
