// HSA retrieval primitives on the shapes of hsa-tiny's streamed prefill: chunk attention over a block of 256
// query rows x top-8 chunks (H 4, S 64, dh 32) out of a memory of N chunks, and landmark scoring + top-k
// over N visible chunks. The device is CUDA when one is visible, else the CPU. The streamed prefill itself
// (pruned and full, device K/V and offload) is BM_PrefillHsa in bench_prefill.cpp.
#include <benchmark/benchmark.h>

#include <cmath>

#include "kernels/chunk_attention.hpp"
#include "models/torch_compat.hpp"

namespace {

torch::Device bench_device() {
  return lctx::models::compat::cuda_available() ? torch::Device("cuda:0") : torch::Device("cpu");
}

// args: memory chunks N
void bm_chunk_attention(benchmark::State& state) {
  const auto dev = bench_device();
  const int64_t tq = 256, h = 4, d = 32, s = 64, k = 8, n = state.range(0);
  torch::manual_seed(2);
  auto opts = torch::TensorOptions().device(dev);
  auto q = torch::randn({h, tq, d}, opts), kk = torch::randn({n, h, s, d}, opts), v = torch::randn({n, h, s, d}, opts);
  auto idx = torch::randint(n, {tq, k}, opts.dtype(torch::kInt64));
  auto w = torch::softmax(torch::randn({tq, k}, opts), -1);
  torch::NoGradGuard ng;
  for (auto _ : state) {
    auto o = lctx::kernels::chunk_attention(q, idx, w, kk, v, 1.0 / std::sqrt(double(d)));
    lctx::models::compat::synchronize(dev);
    benchmark::DoNotOptimize(o.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * tq);
}

// args: memory chunks N (landmarks [N, 128], 256 query rows, top-8)
void bm_select_chunks(benchmark::State& state) {
  const auto dev = bench_device();
  const int64_t tq = 256, dl = 128, n = state.range(0);
  torch::manual_seed(3);
  auto opts = torch::TensorOptions().device(dev);
  auto q = torch::randn({tq, dl}, opts), lmk = torch::randn({n, dl}, opts);
  auto vis = torch::full({tq}, n, opts.dtype(torch::kInt64));
  torch::NoGradGuard ng;
  for (auto _ : state) {
    auto sel = lctx::kernels::select_chunks(q, lmk, vis, 8, 1.0 / std::sqrt(double(dl)));
    lctx::models::compat::synchronize(dev);
    benchmark::DoNotOptimize(sel.idx.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * tq);
}

BENCHMARK(bm_chunk_attention)->ArgName("chunks")->Arg(1024)->Arg(16384)->Unit(benchmark::kMillisecond)
    ->Repetitions(3)->ReportAggregatesOnly(true);
BENCHMARK(bm_select_chunks)->ArgName("chunks")->Arg(1024)->Arg(16384)->Arg(524288)->Unit(benchmark::kMillisecond)
    ->Repetitions(3)->ReportAggregatesOnly(true);

}  // namespace
