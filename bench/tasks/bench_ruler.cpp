// RULER generation throughput: one benchmark per task at 128K and 1M tokens (tokens/s of finished prompts),
// and the essay haystack assembly alone (PromptBuilder copying cached corpus ids and text) on one core.
//   build-*/bench/lctx_bench_tasks --benchmark_filter=ruler
#include <benchmark/benchmark.h>

#include <memory>

#include "core/lengths.hpp"
#include "core/paths.hpp"
#include "tasks/ruler/ruler.hpp"
#include "tasks/sample.hpp"

namespace {

const lctx::Resources& res() {
  static lctx::Resources r = lctx::load_resources("", "");
  return r;
}

void BM_RulerGenerate(benchmark::State& state, std::string task, int64_t length) {
  lctx::GenOptions o;
  o.qa_data = lctx::source_dir() + "/tests/fixtures/qa";
  auto g = lctx::make_generator("ruler", task, res(), o);
  int64_t tokens = 0, i = 0;
  for (auto _ : state) {
    lctx::Sample s = g->generate(length, i++);
    tokens += s.prompt_tokens;
    benchmark::DoNotOptimize(s.input.data());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsRate);
}

// Essay haystack assembly: `length` tokens of corpus words (wrapping around the corpus) through the
// PromptBuilder, materialising the text (arg 1 = also the ids), as niah_single_2 does for its haystack.
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
  for (auto& t : lctx::ruler_task_names())
    for (int64_t L : {int64_t(128) << 10, int64_t(1) << 20})
      benchmark::RegisterBenchmark(("ruler_generate/" + t + "/" + lctx::format_length(L)).c_str(), BM_RulerGenerate, t, L)
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.5);
  benchmark::RegisterBenchmark("ruler_haystack_assembly", BM_RulerHaystackAssembly)
      ->Args({1 << 20, 0})
      ->Args({1 << 20, 1})
      ->Args({32 << 20, 0})
      ->Unit(benchmark::kMillisecond);
  return true;
}();

}  // namespace
