// HSA streamed-prefill benchmark: pushes a long random context in blocks into the "tiny" HSA model with
// kv_offload and reports throughput and the bytes the stream state holds, split into what lives on the compute
// device (landmarks + O(window) local state; chunk K/V too when not offloaded) and what lives in host memory.
// Environment: LCTX_BENCH_DEVICE=cpu|cuda (default cpu), LCTX_BENCH_MAXLEN (default 256k; e.g. 1m on the GPU),
// LCTX_BENCH_BLOCK (tokens per prefill call, default 4096).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/chunk_attention.hpp"
#include "models/hsa.hpp"
#include "models/torch_compat.hpp"

namespace {

using lctx::models::HsaConfig;
using lctx::models::HsaModel;

std::string env_or(const char* name, const char* def) {
  const char* v = std::getenv(name);
  return (v && *v) ? std::string(v) : std::string(def);
}
// "64k", "1m", "4096" -> tokens (k = 1024, m = 2^20); bench-local so the program needs models/ only.
int64_t length_of(const std::string& s) {
  size_t used = 0;
  const int64_t base = std::stoll(s, &used);
  const std::string suf = s.substr(used);
  if (suf.empty()) return base;
  if (suf == "k" || suf == "K") return base * 1024;
  if (suf == "m" || suf == "M") return base * 1024 * 1024;
  throw std::invalid_argument("bad length '" + s + "'");
}
std::string length_name(int64_t n) {
  if (n % (1024 * 1024) == 0) return std::to_string(n / (1024 * 1024)) + "m";
  if (n % 1024 == 0) return std::to_string(n / 1024) + "k";
  return std::to_string(n);
}
torch::Device bench_device() { return torch::Device(env_or("LCTX_BENCH_DEVICE", "cpu")); }

void stream_prefill(benchmark::State& state, int64_t len, bool offload) {
  const auto dev = bench_device();
  const int64_t block = length_of(env_or("LCTX_BENCH_BLOCK", "4096"));
  torch::manual_seed(1);
  auto cfg = HsaConfig::preset("tiny");
  auto model = std::make_shared<HsaModel>(cfg);
  model->to(dev);
  model->eval();
  auto g = torch::make_generator<torch::CPUGeneratorImpl>(5);
  auto ids = torch::randint(cfg.vocab, {len}, g, torch::kInt64);
  lctx::models::StreamOptions opt;
  opt.kv_offload = offload;
  lctx::models::HsaMemoryStats half, end;
  double seconds = 0;
  for (auto _ : state) {
    auto st = model->begin(opt);
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < len; i += block) {
      auto logits = model->prefill(*st, ids.slice(0, i, std::min(len, i + block)));
      benchmark::DoNotOptimize(logits.data_ptr());
      if (i + block >= len / 2 && i < len / 2) half = model->memory_stats(*st);
    }
    lctx::models::compat::synchronize(dev);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    end = model->memory_stats(*st);
  }
  const double iters = double(state.iterations());
  state.counters["tokens_per_s"] = double(len) * iters / seconds;
  state.counters["chunks"] = double(end.chunks);
  state.counters["landmark_MB"] = double(end.landmark_bytes) / 1e6;
  state.counters["local_MB"] = double(end.local_bytes) / 1e6;
  state.counters["kv_device_MB"] = double(end.kv_device_bytes) / 1e6;
  state.counters["kv_host_MB"] = double(end.kv_host_bytes) / 1e6;
  state.counters["device_MB"] = double(end.landmark_bytes + end.local_bytes + end.kv_device_bytes) / 1e6;
  // Device bytes beyond the landmarks at mid-context vs at the end: equal when memory is flat.
  state.counters["device_nonlmk_MB_half"] = double(half.local_bytes + half.kv_device_bytes) / 1e6;
  state.counters["device_nonlmk_MB_end"] = double(end.local_bytes + end.kv_device_bytes) / 1e6;
  state.SetItemsProcessed(int64_t(double(len) * iters));
}

void chunk_attention_bench(benchmark::State& state) {
  const auto dev = bench_device();
  const int64_t tq = 256, h = 4, d = 32, s = 64, k = 8, n = state.range(0);
  torch::manual_seed(2);
  auto opts = torch::TensorOptions().device(dev);
  auto q = torch::randn({h, tq, d}, opts), kk = torch::randn({n, h, s, d}, opts), v = torch::randn({n, h, s, d}, opts);
  auto idx = torch::randint(n, {tq, k}, opts.dtype(torch::kInt64));
  auto w = torch::softmax(torch::randn({tq, k}, opts), -1);
  for (auto _ : state) {
    auto o = lctx::kernels::chunk_attention(q, idx, w, kk, v, 1.0 / std::sqrt(double(d)));
    lctx::models::compat::synchronize(dev);
    benchmark::DoNotOptimize(o.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * tq);
}

int register_all() {
  const int64_t maxlen = length_of(env_or("LCTX_BENCH_MAXLEN", "256k"));
  for (int64_t len = 64 * 1024; len <= maxlen; len *= 4) {
    const std::string name = "BM_HsaStreamedPrefill/offload/" + length_name(len);
    benchmark::RegisterBenchmark(name.c_str(), [len](benchmark::State& st) { stream_prefill(st, len, true); })
        ->Unit(benchmark::kSecond)
        ->Iterations(1)
        ->UseRealTime();
  }
  std::vector<int64_t> device_kv_lengths = {64 * 1024};  // chunk K/V kept on the device
  if (maxlen > 64 * 1024) device_kv_lengths.push_back(maxlen);
  for (int64_t len : device_kv_lengths) {
    const std::string name = "BM_HsaStreamedPrefill/device_kv/" + length_name(len);
    benchmark::RegisterBenchmark(name.c_str(), [len](benchmark::State& st) { stream_prefill(st, len, false); })
        ->Unit(benchmark::kSecond)
        ->Iterations(1)
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark("BM_ChunkAttention/tq256_k8", chunk_attention_bench)
      ->Arg(1024)
      ->Arg(16384)
      ->Unit(benchmark::kMillisecond);
  return 0;
}
const int registered = register_all();

}  // namespace
