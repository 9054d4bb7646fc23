// BABILong generation throughput: one 1M-token sample per iteration for each headline task of the catalogue
// (prompt text; ids = 1 also encodes the ids), one 32M-token sample of the first task (peak memory:
// /usr/bin/time -v ... --benchmark_filter='babilong/.*/length:33554432'), and bAbI story simulation.
//   build/bench/lctx_bench_tasks --benchmark_filter=babilong
#include <benchmark/benchmark.h>

#include "bench/common.hpp"
#include "core/paths.hpp"
#include "core/rng.hpp"
#include "tasks/babi/babi.hpp"
#include "tasks/catalog.hpp"
#include "tasks/sample.hpp"

namespace {

const lctx::Resources& bench_resources() {
  static lctx::Resources r = [] {
    lctx::Resources x;
    x.tokenizer = lctx::Tokenizer::load(lctx::default_tokenizer_path());
    x.corpus = lctx::Corpus::load(lctx::Corpus::default_dir(), *x.tokenizer);
    return x;
  }();
  return r;
}

// Args: length (tokens), ids (0/1).
void BM_babilong(benchmark::State& state, const std::string& task) {
  lctx::GenOptions o;
  o.keep_ids = state.range(1) != 0;
  auto g = lctx::make_babilong_generator(task, bench_resources(), o);
  const int64_t length = state.range(0);
  int64_t index = 0, tokens = 0;
  for (auto _ : state) {
    auto s = g->generate(length, index++);
    tokens += s.prompt_tokens;
    benchmark::DoNotOptimize(s.prompt.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

void BM_babi_story(benchmark::State& state, const std::string& task) {
  lctx::Rng r(1);
  int64_t n = 0;
  for (auto _ : state) {
    auto st = lctx::babi::generate_story(task, r);
    n += static_cast<int64_t>(st.size());
    benchmark::DoNotOptimize(st.data());
  }
  state.counters["lines/s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
}

const bool registered = [] {
  lctx::bench::add_context("cpu");
  const auto headline = lctx::babilong_catalog().headline();
  for (size_t i = 0; i < headline.size(); ++i) {
    auto* b = benchmark::RegisterBenchmark(("babilong/" + headline[i]).c_str(), BM_babilong, headline[i])
                  ->ArgNames({"length", "ids"})
                  ->Args({1 << 20, 0});
    if (i == 0) b->Args({1 << 20, 1});
    lctx::bench::repeated(b->Unit(benchmark::kMillisecond)->UseRealTime());
  }
  benchmark::RegisterBenchmark(("babilong/" + headline.front()).c_str(), BM_babilong, headline.front())
      ->ArgNames({"length", "ids"})
      ->Args({int64_t(32) << 20, 0})
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->Iterations(1);
  for (const auto& t : headline)
    lctx::bench::repeated(benchmark::RegisterBenchmark(("babi_story/" + t).c_str(), BM_babi_story, t));
  return true;
}();

}  // namespace
