// One training step of the built-in models (what `lctx train` does per step: the weight-masked loss under bf16
// autocast on CUDA, backward, the global-norm clip, AdamW), on random tokens, after three untimed warm-up
// steps. The device is CUDA when one is visible, else the CPU.
//
//   BM_TrainStep/model:M/ctx:T/batch:B   M: 0 hsa-tiny (assets/configs/hsa-tiny.json), 1 hsa-paper,
//                                        2 swa-paper, 3 mamba-paper, 4 swa-tiny, 5 mamba-tiny
//
// ctx 4096 / batch 8 (the figures in docs/perf.md) is registered when a CUDA device is visible; ctx 512 /
// batch 2 always (CPU). Counter tokens_per_s: batch * ctx tokens per wall second of a step (the device
// synchronised at the end of every step). Example:
//   build-cuda/bench/lctx_bench_models --benchmark_filter='BM_TrainStep/.*/ctx:4096' --benchmark_out=train.json
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include "models/model.hpp"
#include "models/torch_compat.hpp"
#include "models/train.hpp"

namespace {
using namespace lctx::models;

struct Spec {
  const char* name;
  nlohmann::json arch;
};
const std::vector<Spec>& specs() {
  static const std::vector<Spec> s = {
      {"hsa-tiny",
       {{"kind", "hsa"}, {"preset", "tiny"}, {"residual", "standard"}, {"fusion", "joint"}, {"sparsity_ratio", 2},
        {"token_shift", true}}},
      {"hsa-paper", {{"kind", "hsa"}, {"preset", "paper"}}},
      {"swa-paper", {{"kind", "swa"}, {"d_model", 128}, {"n_heads", 4}, {"n_layers", 8}, {"window", 128}, {"qk_norm", true}}},
      {"mamba-paper", {{"kind", "mamba"}, {"d_model", 128}, {"n_layers", 14}}},
      {"swa-tiny", {{"kind", "swa"}, {"preset", "tiny"}}},
      {"mamba-tiny", {{"kind", "mamba"}, {"preset", "tiny"}}},
  };
  return s;
}

torch::Device bench_device() { return compat::cuda_available() ? torch::Device("cuda:0") : torch::Device("cpu"); }

void BM_TrainStep(benchmark::State& state) {
  const auto& spec = specs().at(size_t(state.range(0)));
  const int64_t t = state.range(1), b = state.range(2);
  const auto dev = bench_device();
  torch::manual_seed(0);
  auto m = build_model(spec.arch);
  m->to(dev);
  m->train(true);
  TrainOptions topt;
  topt.weight_decay = 0.01;
  auto optim_ptr = make_adamw(m->parameters(), topt);
  auto& optim = *optim_ptr;
  auto g = torch::make_generator<torch::CPUGeneratorImpl>(7);
  Batch batch{torch::randint(m->vocab_size(), {b, t + 1}, g, torch::kInt64), torch::ones({b, t})};
  const bool bf16 = dev.is_cuda();
  const auto params = m->parameters();
  auto step = [&] {
    if (bf16) compat::set_autocast_cuda_bf16(true);
    auto loss = batch_loss(*m, batch);
    if (bf16) compat::set_autocast_cuda_bf16(false);
    optim.zero_grad();
    loss.backward();
    clip_grad_norm(params, 1.0);
    if (!adamw_step_fused(optim)) optim.step();
  };
  for (int i = 0; i < 3; ++i) step();
  compat::synchronize(dev);
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    compat::synchronize(dev);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    seconds += s;
  }
  state.SetLabel(spec.name);
  state.counters["tokens_per_s"] = double(b * t) * double(state.iterations()) / seconds;
}

void register_train(benchmark::internal::Benchmark* bm) {
  bm->ArgNames({"model", "ctx", "batch"});
  for (int64_t i = 0; i < int64_t(specs().size()); ++i) {
    bm->Args({i, 512, 2});
    if (compat::cuda_available()) bm->Args({i, 4096, 8});
  }
  bm->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
}

BENCHMARK(BM_TrainStep)->Apply(register_train);

}  // namespace
