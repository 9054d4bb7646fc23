// BABILong generation throughput: one sample of qa1..qa5 at 1M tokens per iteration (prompt text, and ids for
// qa1_ids), plus one 32M-token qa1 sample (peak memory: /usr/bin/time -v ... --benchmark_filter=babilong_32m).
// Run: build/bench/lctx_bench_tasks --benchmark_filter=babilong
#include <benchmark/benchmark.h>

#include "tasks/babi/babi.hpp"
#include "core/rng.hpp"
#include "core/paths.hpp"
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

void BM_babilong(benchmark::State& state, const char* task, int64_t length, bool keep_ids) {
  lctx::GenOptions o;
  o.keep_ids = keep_ids;
  auto g = lctx::make_babilong_generator(task, bench_resources(), o);
  int64_t index = 0, tokens = 0;
  for (auto _ : state) {
    auto s = g->generate(length, index++);
    tokens += s.prompt_tokens;
    benchmark::DoNotOptimize(s.prompt.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

void BM_babi_story(benchmark::State& state, const char* task) {
  lctx::Rng r(1);
  int64_t n = 0;
  for (auto _ : state) {
    auto st = lctx::babi::generate_story(task, r);
    n += static_cast<int64_t>(st.size());
    benchmark::DoNotOptimize(st.data());
  }
  state.counters["lines/s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_CAPTURE(BM_babilong, 1m_qa1, "qa1", 1 << 20, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_babilong, 1m_qa2, "qa2", 1 << 20, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_babilong, 1m_qa3, "qa3", 1 << 20, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_babilong, 1m_qa4, "qa4", 1 << 20, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_babilong, 1m_qa5, "qa5", 1 << 20, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_babilong, 1m_qa1_ids, "qa1", 1 << 20, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_babilong, 32m_qa1, "qa1", int64_t(32) << 20, false)
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK_CAPTURE(BM_babi_story, qa2, "qa2");
BENCHMARK_CAPTURE(BM_babi_story, qa5, "qa5");
