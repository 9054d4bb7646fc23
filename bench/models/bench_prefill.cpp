// Streamed prefill and decode of the built-in models (tiny presets, random weights: the cost does not depend
// on them). The device is CUDA when one is visible, else the CPU (printed in the context as lctx_device).
//
//   BM_PrefillHsa/ctx:N/pruned:P/offload:O/bf16:B/block:K   hsa-tiny, one prefill call of N random tokens
//   BM_PrefillSwa/ctx:N/pruned:P/block:K                     swa-tiny
//   BM_PrefillMamba/ctx:N/block:K                            mamba-tiny (nothing to prune)
//   BM_Decode{Hsa,Swa,Mamba}/ctx:N                           32 greedy steps after a pruned prefill of N
//
// ctx 65536 is registered everywhere; 1M, 4M and 32M only when a CUDA device is visible (select them with
// --benchmark_filter, e.g. 'ctx:1048576/'). Counters: tokens_per_s (prompt tokens per wall second: every
// prompt token counts, pruned or not), upper_positions (StreamState::prunable_rows), peak_device_MB (CUDA
// caching allocator peak during the call), state_device_MB / state_host_MB (what the stream state holds after
// the prompt). Example:
//   build/bench/lctx_bench_models --benchmark_filter='BM_Prefill.*ctx:65536/' --benchmark_out=prefill.json
#include <benchmark/benchmark.h>

#include <chrono>
#include <map>
#include <string>

#include <torch/version.h>

#include "harness/memory.hpp"
#include "models/hsa.hpp"
#include "models/mamba.hpp"
#include "models/model.hpp"
#include "models/swa.hpp"
#include "models/torch_compat.hpp"

namespace {
using namespace lctx::models;

torch::Device bench_device() { return compat::cuda_available() ? torch::Device("cuda:0") : torch::Device("cpu"); }

std::shared_ptr<Model> make_model(const std::string& kind) {
  static std::map<std::string, std::shared_ptr<Model>> cache;  // one model per kind for the whole run
  auto& m = cache[kind];
  if (!m) {
    torch::manual_seed(0);
    m = build_model({{"kind", kind}, {"preset", "tiny"}});
    m->to(bench_device());
    m->eval();
    // Warm-up (lazy CUDA/cuBLAS initialisation, allocator growth, first-launch costs): one short untimed
    // prompt through the pruned and the full path, so the first timed repetition is not an outlier.
    torch::NoGradGuard ng;
    auto ids = torch::randint(m->vocab_size(), {8192}, torch::TensorOptions().dtype(torch::kLong)).to(m->device());
    for (bool prune : {true, false}) {
      StreamOptions opt;
      opt.prune = prune;
      auto st = m->begin(opt);
      benchmark::DoNotOptimize(m->prefill(*st, ids).data_ptr());
    }
    compat::synchronize(m->device());
  }
  return m;
}

struct StateBytes {
  int64_t device = 0, host = 0;
};
StateBytes state_bytes(Model& m, StreamState& st) {
  StateBytes b;
  if (auto* s = dynamic_cast<SwaState*>(&st)) b.device = s->bytes();
  if (auto* s = dynamic_cast<MambaState*>(&st)) b.device = s->bytes();
  if (auto* h = dynamic_cast<HsaModel*>(&m)) {
    auto ms = h->memory_stats(st);
    b.device = ms.landmark_bytes + ms.local_bytes + ms.kv_device_bytes;
    b.host = ms.kv_host_bytes;
  }
  return b;
}

// args: ctx, pruned, offload, bf16, block (SWA / Mamba read only what they have)
void bm_prefill(benchmark::State& state, const std::string& kind) {
  auto m = make_model(kind);
  const auto dev = m->device();
  const int64_t len = state.range(0);
  StreamOptions opt;
  if (kind == "hsa") {
    opt.prune = state.range(1) != 0;
    opt.kv_offload = state.range(2) != 0;
    opt.precision = state.range(3) != 0 ? "bf16" : "fp32";
    opt.block = state.range(4);
  } else if (kind == "swa") {
    opt.prune = state.range(1) != 0;
    opt.block = state.range(2);
  } else {
    opt.block = state.range(1);
  }
  auto g = torch::make_generator<torch::CPUGeneratorImpl>(5);
  auto ids = torch::randint(m->vocab_size(), {len}, g, torch::kInt64).to(dev);
  torch::NoGradGuard ng;
  const int di = dev.is_cuda() ? (dev.has_index() ? dev.index() : 0) : 0;
  int64_t peak = -1, rows = 0;
  StateBytes bytes;
  double seconds = 0;
  for (auto _ : state) {
    compat::synchronize(dev);
    if (dev.is_cuda()) lctx::harness::reset_device_peak(di);
    const auto t0 = std::chrono::steady_clock::now();
    auto st = m->begin(opt);
    auto last = m->prefill(*st, ids);
    compat::synchronize(dev);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    seconds += s;
    benchmark::DoNotOptimize(last.data_ptr());
    if (dev.is_cuda())
      if (auto p = lctx::harness::device_peak_bytes(di)) peak = *p;
    rows = st->prunable_rows;
    bytes = state_bytes(*m, *st);
  }
  state.counters["tokens_per_s"] = double(len) * double(state.iterations()) / seconds;
  state.counters["upper_positions"] = double(rows);
  if (peak >= 0) state.counters["peak_device_MB"] = double(peak) / 1048576.0;
  state.counters["state_device_MB"] = double(bytes.device) / 1048576.0;
  state.counters["state_host_MB"] = double(bytes.host) / 1048576.0;
}

void bm_decode(benchmark::State& state, const std::string& kind) {
  auto m = make_model(kind);
  const int64_t ctx = state.range(0), n = 32;
  const auto dev = m->device();
  auto g = torch::make_generator<torch::CPUGeneratorImpl>(6);
  auto ids = torch::randint(m->vocab_size(), {ctx}, g, torch::kInt64).to(dev);
  StreamOptions opt;
  opt.prune = true;
  torch::NoGradGuard ng;
  for (auto _ : state) {
    auto st = m->begin(opt);
    auto last = m->prefill(*st, ids);
    compat::synchronize(dev);
    const auto t0 = std::chrono::steady_clock::now();
    auto out = m->generate(*st, last, int(n), -1);
    compat::synchronize(dev);
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(double(n) * double(state.iterations()),
                                                      benchmark::Counter::kIsIterationInvariantRate);
}

benchmark::internal::Benchmark* timed(benchmark::internal::Benchmark* b, int64_t len) {
  b->UseManualTime()->Unit(benchmark::kSecond)->Iterations(1);
  // Short contexts: 3 repetitions with mean/median/stddev; the long ones once (a 32M prefill takes a while).
  if (len <= 65536) b->Repetitions(3)->ReportAggregatesOnly(true);
  return b;
}

int register_all() {
  const bool cuda = compat::cuda_available();
  benchmark::AddCustomContext("lctx_device", cuda ? "cuda:0" : "cpu");
  benchmark::AddCustomContext("lctx_libtorch", TORCH_VERSION);
#ifdef NDEBUG
  benchmark::AddCustomContext("lctx_build", "release");
#else
  benchmark::AddCustomContext("lctx_build", "debug");
#endif
  std::vector<int64_t> lengths = {int64_t(64) << 10};
  if (cuda)
    for (int64_t l : {int64_t(1) << 20, int64_t(4) << 20, int64_t(32) << 20}) lengths.push_back(l);
  const int64_t block = cuda ? 65536 : 4096;
  for (int64_t len : lengths) {
    const bool longctx = len > (int64_t(1) << 20);
    for (int pruned : {1, 0}) {
      if (!pruned && longctx) continue;  // the full path is O(T^2 / S) in the upper layers: 1M at most
      for (int offload : {0, 1}) {
        // device K/V of hsa-tiny: 2 KiB per token in fp32 (64 GiB at 32M), 1 KiB in bf16
        for (int bf16 : {0, 1}) {
          if (len >= (int64_t(32) << 20) && !offload && !bf16) continue;
          if (!cuda && bf16) continue;
          timed(benchmark::RegisterBenchmark("BM_PrefillHsa", bm_prefill, std::string("hsa")), len)
              ->Args({len, pruned, offload, bf16, block})
              ->ArgNames({"ctx", "pruned", "offload", "bf16", "block"});
        }
      }
    }
    for (int pruned : {1, 0}) {
      if (!pruned && len > (int64_t(4) << 20)) continue;
      timed(benchmark::RegisterBenchmark("BM_PrefillSwa", bm_prefill, std::string("swa")), len)
          ->Args({len, pruned, block})
          ->ArgNames({"ctx", "pruned", "block"});
    }
    timed(benchmark::RegisterBenchmark("BM_PrefillMamba", bm_prefill, std::string("mamba")), len)
        ->Args({len, block})
        ->ArgNames({"ctx", "block"});
  }
  for (std::string kind : {"hsa", "swa", "mamba"}) {
    std::string name = "BM_Decode" + std::string(1, char(kind[0] - 32)) + kind.substr(1);
    timed(benchmark::RegisterBenchmark(name.c_str(), bm_decode, kind), 4096)->Arg(4096)->ArgName("ctx");
  }
  return 0;
}
const int registered = register_all();

}  // namespace
