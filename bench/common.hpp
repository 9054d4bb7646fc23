// Conventions shared by the Google Benchmark programs in bench/:
// - sizes and switches are benchmark arguments (Args/ArgNames, --benchmark_filter selects them), never
//   environment variables;
// - the build and the device go into the JSON/console context (AddCustomContext), once per program;
// - benchmarks that are cheap enough repeat and report aggregates (mean, median, stddev, cv).
#pragma once
#include <benchmark/benchmark.h>

#include <string>

#include "core/version.hpp"

namespace lctx::bench {

// Adds lctx_version, lctx_git, build_type, compiler and device to the benchmark context.
inline void add_context(const std::string& device) {
  benchmark::AddCustomContext("lctx_version", lctx::version_string());
  benchmark::AddCustomContext("lctx_git", lctx::git_hash());
#ifdef LCTX_BUILD_TYPE
  benchmark::AddCustomContext("build_type", LCTX_BUILD_TYPE);
#endif
#ifdef __VERSION__
  benchmark::AddCustomContext("compiler", __VERSION__);
#endif
  benchmark::AddCustomContext("device", device);
}

// `n` repetitions, aggregates only.
inline benchmark::internal::Benchmark* repeated(benchmark::internal::Benchmark* b, int n = 3) {
  return b->Repetitions(n)->ReportAggregatesOnly(true);
}

}  // namespace lctx::bench
