// Kernels: sliding-window attention (full sequence, blockwise reference) and the Mamba selective scan
// (chunked autograd form vs the inference dispatcher). LCTX_BENCH_DEVICE = cpu (default) | cuda.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "kernels/kernels.hpp"
#include "models/torch_compat.hpp"

namespace {
torch::Device dev() {
  const char* v = std::getenv("LCTX_BENCH_DEVICE");
  return torch::Device(v && *v ? v : "cpu");
}

// args: T, window; B=1, H=4, D=32
void bm_window_attention(benchmark::State& state) {
  torch::manual_seed(0);
  const int64_t t = state.range(0), w = state.range(1);
  auto o = torch::TensorOptions().device(dev());
  auto q = torch::randn({1, 4, t, 32}, o), k = torch::randn({1, 4, t, 32}, o), v = torch::randn({1, 4, t, 32}, o);
  torch::NoGradGuard ng;
  for (auto _ : state) {
    auto y = lctx::kernels::window_attention(q, k, v, w, 0, 0);
    lctx::models::compat::synchronize(q.device());
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.counters["tokens/s"] = benchmark::Counter(double(t) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(bm_window_attention)->Args({4096, 256})->Args({4096, 512})->Args({16384, 512})->Unit(benchmark::kMillisecond);

// args: T, chunked (1: selective_scan_reference, the training path; 0: the inference dispatcher); B=1,
// Di=256, N=16 (the tiny preset's mixer)
void bm_selective_scan(benchmark::State& state) {
  torch::manual_seed(0);
  const int64_t t = state.range(0), di = 256, n = 16;
  auto o = torch::TensorOptions().device(dev());
  auto x = torch::randn({1, t, di}, o), dt = torch::softplus(torch::randn({1, t, di}, o) - 2);
  auto A = -torch::exp(torch::randn({di, n}, o)), Bm = torch::randn({1, t, n}, o), C = torch::randn({1, t, n}, o);
  auto D = torch::ones({di}, o);
  torch::NoGradGuard ng;
  for (auto _ : state) {
    auto y = state.range(1) ? lctx::kernels::selective_scan_reference(x, dt, A, Bm, C, D, {}, nullptr, 64)
                            : lctx::kernels::selective_scan(x, dt, A, Bm, C, D, {}, nullptr, 64);
    lctx::models::compat::synchronize(x.device());
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.counters["tokens/s"] = benchmark::Counter(double(t) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(bm_selective_scan)->Args({4096, 0})->Args({4096, 1})->Unit(benchmark::kMillisecond);
}  // namespace
