// Streamed prefill and decode throughput of the SWA and Mamba baselines (random weights: speed does not
// depend on them). Environment:
//   LCTX_BENCH_DEVICE  cpu (default) | cuda
//   LCTX_BENCH_MAXLEN  longest context, e.g. 16k (default) or 1m; lengths run 1k, 4k, 16k, ... up to it
//   LCTX_BENCH_BLOCK   prefill block size (default 4096)
//   LCTX_BENCH_PRESET  tiny (default) | small
// Counters: tokens/s (rate), state_MB (streamed state after the context; flat in the length).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "models/mamba.hpp"
#include "models/model.hpp"
#include "models/swa.hpp"
#include "models/torch_compat.hpp"

namespace {
using namespace lctx::models;

std::string env(const char* k, const char* def) {
  const char* v = std::getenv(k);
  return v && *v ? v : def;
}
// "16k", "1m", "4096" -> tokens (k = 1024, m = 1048576). Local: the bench links lctx_models only.
int64_t length_of(const std::string& s) {
  size_t used = 0;
  int64_t n = std::stoll(s, &used);
  const std::string suf = s.substr(used);
  if (suf == "k" || suf == "K") n *= 1024;
  else if (suf == "m" || suf == "M") n *= 1048576;
  else if (!suf.empty()) throw std::invalid_argument("bad length '" + s + "'");
  return n;
}
torch::Device bench_device() {
  auto d = env("LCTX_BENCH_DEVICE", "cpu");
  return torch::Device(d);
}

std::shared_ptr<Model> make_model(const std::string& kind) {
  torch::manual_seed(0);
  auto m = build_model({{"kind", kind}, {"preset", env("LCTX_BENCH_PRESET", "tiny")}});
  m->to(bench_device());
  m->eval();
  return m;
}

int64_t state_bytes(Model& m, StreamState& st) {
  if (auto* s = dynamic_cast<SwaState*>(&st)) return s->bytes();
  if (auto* s = dynamic_cast<MambaState*>(&st)) return s->bytes();
  return 0;
}

void bm_prefill(benchmark::State& state, const std::string& kind) {
  auto m = make_model(kind);
  const int64_t len = state.range(0), block = length_of(env("LCTX_BENCH_BLOCK", "4096"));
  const auto dev = m->device();
  auto ids = torch::randint(0, m->vocab_size(), {len}, torch::TensorOptions().dtype(torch::kLong)).to(dev);
  torch::NoGradGuard ng;
  int64_t bytes = 0;
  for (auto _ : state) {
    auto st = m->begin();
    torch::Tensor last;
    for (int64_t p = 0; p < len; p += block) last = m->prefill(*st, ids.slice(0, p, std::min(len, p + block)));
    compat::synchronize(dev);
    benchmark::DoNotOptimize(last.data_ptr());
    bytes = state_bytes(*m, *st);
  }
  state.counters["tokens/s"] = benchmark::Counter(double(len) * double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["state_MB"] = double(bytes) / 1048576.0;
}

void bm_decode(benchmark::State& state, const std::string& kind) {
  auto m = make_model(kind);
  const int64_t ctx = state.range(0), n = 32;
  const auto dev = m->device();
  auto ids = torch::randint(0, m->vocab_size(), {ctx}, torch::TensorOptions().dtype(torch::kLong)).to(dev);
  torch::NoGradGuard ng;
  for (auto _ : state) {
    auto st = m->begin();
    state.PauseTiming();
    auto last = m->prefill(*st, ids);
    compat::synchronize(dev);
    state.ResumeTiming();
    auto out = m->generate(*st, last, int(n), -1);
    compat::synchronize(dev);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(double(n) * double(state.iterations()), benchmark::Counter::kIsRate);
}

struct Register {
  Register() {
    const int64_t maxlen = length_of(env("LCTX_BENCH_MAXLEN", "16k"));
    for (std::string kind : {"swa", "mamba"}) {
      auto* b = benchmark::RegisterBenchmark(("prefill/" + kind).c_str(), bm_prefill, kind);
      for (int64_t len = 1024; len <= maxlen; len *= 4) b->Arg(len);
      b->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();
      benchmark::RegisterBenchmark(("decode/" + kind).c_str(), bm_decode, kind)
          ->Arg(1024)
          ->Unit(benchmark::kMillisecond)
          ->Iterations(3)
          ->UseRealTime();
    }
  }
} reg;
}  // namespace
