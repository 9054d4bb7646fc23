// RULER generation throughput: one benchmark per catalogue task at 128K and 1M tokens (tokens/s of finished
// prompts), and the essay haystack assembly alone (PromptBuilder copying cached corpus ids and text) on one
// core.
//   build/bench/lctx_bench_tasks --benchmark_filter=ruler
//   build/bench/lctx_bench_tasks --benchmark_filter='ruler_generate/.*/length:1048576'
#include <benchmark/benchmark.h>

#include <memory>

#include "bench/common.hpp"
#include "core/paths.hpp"
#include "tasks/catalog.hpp"
#include "tasks/ruler/ruler.hpp"
#include "tasks/sample.hpp"

namespace {

const lctx::Resources& res() {
  static lctx::Resources r = lctx::load_resources("", "");
  return r;
}

// Arg 0: target length in tokens.
void BM_RulerGenerate(benchmark::State& state, const std::string& task) {
  lctx::GenOptions o;
  o.qa_data = lctx::source_dir() + "/tests/fixtures/qa";
  auto g = lctx::make_generator(lctx::ruler_catalog().name, task, res(), o);
  const int64_t length = state.range(0);
  int64_t tokens = 0, i = 0;
  for (auto _ : state) {
    lctx::Sample s = g->generate(length, i++);
    tokens += s.prompt_tokens;
    benchmark::DoNotOptimize(s.input.data());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsRate);
}

// Essay haystack assembly: `length` tokens of corpus words (wrapping around the corpus) through the
// PromptBuilder, materialising the text (ids = 1: also the ids), as the essay-haystack needle tasks do.
void BM_RulerHaystackAssembly(benchmark::State& state) {
  const lctx::Corpus& c = *res().corpus;
  const int64_t target = state.range(0);
  const bool ids = state.range(1) != 0;
  lctx::ruler::ChunkMemo memo(*res().tokenizer);
  int64_t tokens = 0;
  for (auto _ : state) {
    lctx::ruler::PromptBuilder pb(memo, true, ids);
    size_t w = 12345;
    while (pb.bytes() == 0 || pb.tokens() < target) {
      size_t end = std::min(c.num_words(), w + 200000);
      if (pb.bytes()) pb.lit(" ");
      pb.words(c, w, end);
      w = end == c.num_words() ? 0 : end;
    }
    pb.finish();
    tokens += pb.tokens();
    benchmark::DoNotOptimize(pb.text().data());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsRate);
}

const bool registered = [] {
  lctx::bench::add_context("cpu");
  for (const auto& t : lctx::ruler_catalog().tasks)
    lctx::bench::repeated(benchmark::RegisterBenchmark(("ruler_generate/" + t.name).c_str(), BM_RulerGenerate, t.name)
                              ->ArgName("length")
                              ->Arg(int64_t(128) << 10)
                              ->Arg(int64_t(1) << 20)
                              ->Unit(benchmark::kMillisecond)
                              ->MinTime(0.2));
  benchmark::RegisterBenchmark("ruler_haystack_assembly", BM_RulerHaystackAssembly)
      ->ArgNames({"length", "ids"})
      ->Args({1 << 20, 0})
      ->Args({1 << 20, 1})
      ->Args({32 << 20, 0})
      ->Unit(benchmark::kMillisecond);
  return true;
}();

}  // namespace
