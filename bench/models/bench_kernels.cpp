// Kernels against their LibTorch references and against dense SDPA on the same shapes. Runs on the GPU when
// one is visible (CUDA kernels when built with LCTX_WITH_CUDA), else on the CPU; the context records which
// (kernels_device, kernels_cuda_built, torch_version). Counters: useful_TFLOPs (the sparse operation's own
// arithmetic: window or selected-chunk attention, landmark scoring) and pct_bf16_peak (share of 790 TFLOP/s,
// the dense bf16 matmul rate measured on one H200; kern_matmul_peak measures the machine's own), GB/s where
// memory traffic bounds the kernel, tokens/s for the scan.
//   impl: 0 = dispatcher (CUDA kernel on a GPU), 1 = LibTorch reference, 2 = dense SDPA (FlashAttention on a GPU)
//   bf16: 1 = bfloat16 inputs (GPU), 0 = float32
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "harness/memory.hpp"
#include "kernels/kernels.hpp"
#include "models/mamba.hpp"
#include "models/torch_compat.hpp"

namespace {

constexpr double kPeakBf16 = 790e12;

torch::Device dev() {
  static const torch::Device d = torch::cuda::is_available() ? torch::Device("cuda") : torch::Device("cpu");
  return d;
}
const bool kContext = [] {
  benchmark::AddCustomContext("kernels_device", torch::cuda::is_available() ? "cuda" : "cpu");
  benchmark::AddCustomContext("kernels_cuda_built", lctx::kernels::cuda_kernels_built() ? "yes" : "no");
  benchmark::AddCustomContext("torch_version", TORCH_VERSION);
  benchmark::AddCustomContext("bf16_peak_TFLOPs_assumed", "790");
  return true;
}();

torch::TensorOptions opts(bool bf16) {
  return torch::TensorOptions().device(dev()).dtype(bf16 ? torch::kBFloat16 : torch::kFloat);
}
void sync() { lctx::models::compat::synchronize(dev()); }
void flops_counters(benchmark::State& st, double flops_per_iter) {
  st.counters["useful_TFLOPs"] = benchmark::Counter(flops_per_iter * 1e-12 * double(st.iterations()),
                                                    benchmark::Counter::kIsRate);
  st.counters["pct_bf16_peak"] = benchmark::Counter(100.0 * flops_per_iter / kPeakBf16 * double(st.iterations()),
                                                    benchmark::Counter::kIsRate);
}

// Dense scaled-dot-product attention (LibTorch 2.x: FlashAttention/cuDNN/efficient kernels on a GPU).
bool has_sdpa() {
#if LCTX_TORCH_AT_LEAST(2, 0)
  return true;
#else
  return false;
#endif
}
torch::Tensor sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal) {
#if LCTX_TORCH_AT_LEAST(2, 0)
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, causal);
#else
  (void)q, (void)k, (void)v, (void)causal;
  return {};
#endif
}
// One untimed call first (kernel attributes, allocator, cuBLAS/cuDNN handles and plans).
template <class F>
void warm_up(const F& f) {
  f();
  sync();
}
// The timed loop: one untimed call, then every iteration calls run() (returning a tensor) and synchronises.
template <class F>
void time_calls(benchmark::State& st, const F& run) {
  warm_up(run);
  for (auto _ : st) {
    auto out = run();
    sync();
    benchmark::DoNotOptimize(out.data_ptr());
  }
}
bool skip_reference(benchmark::State& st, double elems, const char* why) {
  if (!dev().is_cuda() && elems > 3e8) {
    st.SkipWithError(why);
    return true;
  }
  return false;
}

// ---- windowed causal attention: args T, W, H, D, impl, bf16 ----------------------------------------------
void kern_window_attention(benchmark::State& st) {
  torch::manual_seed(0);
  const int64_t t = st.range(0), w = st.range(1), h = st.range(2), d = st.range(3), impl = st.range(4);
  const bool bf16 = st.range(5) && dev().is_cuda();
  if (impl == 2 && !has_sdpa()) return st.SkipWithError("scaled_dot_product_attention needs LibTorch >= 2.0");
  auto o = opts(bf16);
  auto q = torch::randn({1, h, t, d}, o), k = torch::randn({1, h, t, d}, o), v = torch::randn({1, h, t, d}, o);
  torch::NoGradGuard ng;
  auto run = [&] {
    return impl == 0 ? lctx::kernels::window_attention(q, k, v, w, 0, 0)
           : impl == 1 ? lctx::kernels::window_attention_reference(q, k, v, w, 0, 0)
                       : sdpa(q, k, v, true);
  };
  time_calls(st, run);
  // useful work: each query against its min(i + 1, W) keys, QK and PV
  const double keys = double(t) * double(w) - double(w) * double(w - 1) / 2.0;
  flops_counters(st, 4.0 * h * d * (t >= w ? keys : double(t) * (t + 1) / 2.0));
  st.counters["tokens/s"] = benchmark::Counter(double(t) * st.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(kern_window_attention)
    ->ArgNames({"T", "W", "H", "D", "impl", "bf16"})
    ->ArgsProduct({{4096, 65536}, {128, 512}, {4}, {32}, {0, 1, 2}, {1}})
    ->ArgsProduct({{4096}, {512}, {16}, {64}, {0, 1, 2}, {1}})
    ->Unit(benchmark::kMillisecond)->Repetitions(3)->DisplayAggregatesOnly(true);

// ---- landmark scoring + top-k: args Tq, N, d, k, impl, bf16 ------------------------------------------------
void kern_select_chunks(benchmark::State& st) {
  torch::manual_seed(0);
  const int64_t tq = st.range(0), n = st.range(1), d = st.range(2), k = st.range(3), impl = st.range(4);
  const bool bf16 = st.range(5) && dev().is_cuda();
  if (impl == 1 && skip_reference(st, double(tq) * n, "reference too slow on the CPU at this size")) return;
  auto o = opts(bf16);
  auto q = torch::randn({tq, d}, o), lm = torch::randn({n, d}, o);
  auto vis = torch::full({tq}, n, o.dtype(torch::kInt64));
  torch::NoGradGuard ng;
  const double scale = 1.0 / std::sqrt(double(d));
  auto run = [&] {
    return impl == 0 ? lctx::kernels::select_chunks(q, lm, vis, k, scale)
                     : lctx::kernels::select_chunks_reference(q, lm, vis, k, scale);
  };
  time_calls(st, [&] { return run().idx; });
  flops_counters(st, 2.0 * tq * n * d);
  st.counters["landmark_GB/s"] = benchmark::Counter(double(n) * d * (bf16 ? 2 : 4) * 1e-9 * st.iterations(),
                                                    benchmark::Counter::kIsRate);
}
BENCHMARK(kern_select_chunks)
    ->ArgNames({"Tq", "N", "d", "k", "impl", "bf16"})
    ->ArgsProduct({{256}, {4096, 65536, 524288}, {128}, {8, 32}, {0, 1}, {1}})
    ->Unit(benchmark::kMillisecond)->Repetitions(3)->DisplayAggregatesOnly(true);

// Random top-k selection of visible chunks per token (chunk c visible to token t iff c < t / S), as training
// makes it: idx [B, T, K] (-1 where fewer are visible), softmax-like weights.
struct Selection {
  torch::Tensor idx, w;
};
Selection random_selection(int64_t b, int64_t t, int64_t s, int64_t kk) {
  const int64_t n = t / s;
  auto scores = torch::rand({b, t, n});
  auto vis = torch::arange(t, torch::kInt64).div(s, "floor");
  auto sel = lctx::kernels::topk_visible(scores, vis, std::min(kk, n));
  auto idx = sel.idx;
  if (idx.size(-1) < kk) idx = torch::cat({idx, torch::full({b, t, kk - idx.size(-1)}, -1, idx.options())}, -1);
  auto w = torch::rand({b, t, kk}).masked_fill(idx.lt(0), 0.0);
  return {idx.to(dev()), w.to(dev())};
}

// ---- chunk attention, training: args T, H, Hkv, D, K, mode (0 fwd, 1 fwd+bwd), impl, bf16 ---------------------
// S = 64, B = 1, N = T / S chunks. impl 2: causal SDPA over the same T tokens (k/v expanded to H heads).
void kern_chunk_attention_train(benchmark::State& st) {
  torch::manual_seed(0);
  const int64_t t = st.range(0), h = st.range(1), hkv = st.range(2), d = st.range(3), kk = st.range(4);
  const bool bwd = st.range(5), bf16 = st.range(7) && dev().is_cuda();
  const int64_t impl = st.range(6), s = 64, n = t / s;
  if (impl == 2 && !has_sdpa()) return st.SkipWithError("scaled_dot_product_attention needs LibTorch >= 2.0");
  if (impl == 1 && skip_reference(st, double(t) * kk * hkv * s * d, "reference gathers too much for the CPU")) return;
  auto o = opts(bf16);
  auto sel = random_selection(1, t, s, kk);
  const double scale = 1.0 / std::sqrt(double(d));
  auto q = torch::randn({1, h, t, d}, o).requires_grad_(bwd);
  auto k = torch::randn({1, n, hkv, s, d}, o).requires_grad_(bwd), v = torch::randn({1, n, hkv, s, d}, o).requires_grad_(bwd);
  auto w = sel.w.to(o.dtype()).requires_grad_(bwd);
  auto kd = torch::randn({1, h, t, d}, o).requires_grad_(bwd), vd = torch::randn({1, h, t, d}, o).requires_grad_(bwd);
  torch::AutoGradMode grad(bwd);
  auto run = [&] {
    torch::Tensor y = impl == 0 ? lctx::kernels::chunk_attention_train(q, sel.idx, w, k, v, scale, false)
                      : impl == 1 ? lctx::kernels::chunk_attention_train_reference(q, sel.idx, w, k, v, scale, false)
                                  : sdpa(q, kd, vd, true);
    if (bwd) y.sum().backward();
    return y;
  };
  time_calls(st, run);
  // useful forward work per token and head: K chunks x S keys, QK and PV; backward counted as 2.5 x forward
  const double fwd = impl == 2 ? 4.0 * h * d * double(t) * (t + 1) / 2.0 : 4.0 * h * d * double(t) * kk * s;
  flops_counters(st, bwd ? 3.5 * fwd : fwd);
  st.counters["tokens/s"] = benchmark::Counter(double(t) * st.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(kern_chunk_attention_train)
    ->ArgNames({"T", "H", "Hkv", "D", "K", "bwd", "impl", "bf16"})
    ->ArgsProduct({{4096}, {4}, {4}, {32}, {8}, {0, 1}, {0, 1, 2}, {1}})          // hsa-tiny
    ->ArgsProduct({{4096}, {16}, {1}, {64}, {8, 32}, {0, 1}, {0, 1, 2}, {1}})     // paper-sized
    ->Unit(benchmark::kMillisecond)->Repetitions(3)->DisplayAggregatesOnly(true);

// ---- chunk attention, inference over a chunk store: args Tq, N, H, Hkv, D, K, impl, bf16 ---------------------
void kern_chunk_attention(benchmark::State& st) {
  torch::manual_seed(0);
  const int64_t tq = st.range(0), n = st.range(1), h = st.range(2), hkv = st.range(3), d = st.range(4);
  const int64_t kk = st.range(5), impl = st.range(6), s = 64;
  const bool bf16 = st.range(7) && dev().is_cuda();
  auto o = opts(bf16);
  auto q = torch::randn({h, tq, d}, o);
  auto k = torch::randn({n, hkv, s, d}, o), v = torch::randn({n, hkv, s, d}, o);
  auto idx = torch::randint(0, n, {tq, kk}, o.dtype(torch::kInt64));
  auto w = torch::softmax(torch::randn({tq, kk}, o.dtype(torch::kFloat)), -1);
  torch::NoGradGuard ng;
  const double scale = 1.0 / std::sqrt(double(d));
  auto run = [&] {
    return impl == 0 ? lctx::kernels::chunk_attention(q, idx, w, k, v, scale)
                     : lctx::kernels::chunk_attention_reference(q, idx, w, k, v, scale);
  };
  time_calls(st, run);
  flops_counters(st, 4.0 * h * d * double(tq) * kk * s);
  st.counters["kv_GB/s"] = benchmark::Counter(2.0 * tq * kk * hkv * s * d * (bf16 ? 2 : 4) * 1e-9 * st.iterations(),
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(kern_chunk_attention)
    ->ArgNames({"Tq", "N", "H", "Hkv", "D", "K", "impl", "bf16"})
    ->ArgsProduct({{256}, {65536}, {4}, {4}, {32}, {8}, {0, 1}, {1}})
    ->ArgsProduct({{256}, {8192}, {16}, {1}, {64}, {8, 32}, {0, 1}, {1}})
    ->Unit(benchmark::kMillisecond)->Repetitions(3)->DisplayAggregatesOnly(true);

// ---- Mamba selective scan: args T, impl (0 dispatcher: CUDA kernel or CPU loop, 1 chunked reference) ----------
// B = 1, Di = 256, N = 16 (the tiny preset's mixer), float32.
void kern_selective_scan(benchmark::State& st) {
  torch::manual_seed(0);
  const int64_t t = st.range(0), impl = st.range(1), di = 256, n = 16;
  if (impl == 1 && skip_reference(st, double(t) * di * n * 8, "chunked reference too slow on the CPU")) return;
  auto o = torch::TensorOptions().device(dev());
  auto x = torch::randn({1, t, di}, o), dt = torch::softplus(torch::randn({1, t, di}, o) - 2);
  auto A = -torch::exp(torch::randn({di, n}, o)), Bm = torch::randn({1, t, n}, o), C = torch::randn({1, t, n}, o);
  auto D = torch::ones({di}, o);
  torch::NoGradGuard ng;
  torch::Tensor hl;
  auto run = [&] {
    return impl == 1 ? lctx::kernels::selective_scan_reference(x, dt, A, Bm, C, D, {}, &hl, 64)
                     : lctx::kernels::selective_scan(x, dt, A, Bm, C, D, {}, &hl, 64);
  };
  time_calls(st, run);
  st.counters["tokens/s"] = benchmark::Counter(double(t) * st.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(kern_selective_scan)
    ->ArgNames({"T", "impl"})
    ->ArgsProduct({{4096, 65536, 1048576}, {0, 1}})
    ->Unit(benchmark::kMillisecond)->Repetitions(3)->DisplayAggregatesOnly(true);

// ---- Mamba selective scan, training: args B, T, bwd (0 forward, 1 forward + backward), impl, bf16 -------------
// The mamba-paper mixer: Di 256, N 16, with D and without h0. impl 0: the dispatcher (CUDA forward and backward
// kernels on a GPU), 1: the chunked LibTorch reference (autograd through LibTorch ops). bf16: x/dt/B/C in
// bfloat16 (A, D float32). tokens/s = B * T per call.
void kern_selective_scan_train(benchmark::State& st) {
  torch::manual_seed(0);
  const int64_t b = st.range(0), t = st.range(1), impl = st.range(3), di = 256, n = 16;
  const bool bwd = st.range(2), bf16 = st.range(4) && dev().is_cuda();
  if (skip_reference(st, double(b) * t * di * n * (impl == 1 ? 8 : 1), "too large for the CPU")) return;
  auto o = opts(bf16);
  auto f32 = torch::TensorOptions().device(dev());
  auto x = torch::randn({b, t, di}, o).requires_grad_(bwd);
  auto dt = torch::softplus(torch::randn({b, t, di}, f32) - 2).to(o.dtype()).requires_grad_(bwd);
  auto A = (-torch::exp(torch::randn({di, n}, f32))).requires_grad_(bwd);
  auto Bm = torch::randn({b, t, n}, o).requires_grad_(bwd), C = torch::randn({b, t, n}, o).requires_grad_(bwd);
  auto D = torch::ones({di}, f32).requires_grad_(bwd);
  auto gy = torch::randn({b, t, di}, o);
  torch::AutoGradMode grad(bwd);
  auto run = [&] {
    auto y = impl == 1 ? lctx::kernels::selective_scan_reference(x, dt, A, Bm, C, D, {}, nullptr, 64)
                       : lctx::kernels::selective_scan(x, dt, A, Bm, C, D, {}, nullptr, 64);
    if (bwd) y.backward(gy);
    return y;
  };
  time_calls(st, run);
  st.counters["tokens/s"] = benchmark::Counter(double(b) * t * st.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(kern_selective_scan_train)
    ->ArgNames({"B", "T", "bwd", "impl", "bf16"})
    ->ArgsProduct({{16}, {4096}, {0, 1}, {0, 1}, {0, 1}})
    ->ArgsProduct({{2}, {4096}, {1}, {0, 1}, {1}})
    ->Unit(benchmark::kMillisecond)->Repetitions(3)->DisplayAggregatesOnly(true);

// ---- Mamba training step (the mamba-paper model): args B, T --------------------------------------------------
// assets/configs/mamba-paper.json (d_model 128, 14 layers, d_state 16), next-token cross entropy, forward +
// backward (no optimizer step), bf16 autocast on a GPU as the trainer does. tokens/s = B * T per step.
void kern_mamba_train_step(benchmark::State& st) {
  torch::manual_seed(0);
  const int64_t b = st.range(0), t = st.range(1);
  if (!dev().is_cuda() && b * t > 8192) return st.SkipWithError("GPU only at this size");
  auto cfg = lctx::models::MambaConfig::from_json(nlohmann::json{{"kind", "mamba"}, {"d_model", 128}, {"n_layers", 14}});
  lctx::models::MambaModel model(cfg);
  model.to(dev());
  auto ids = torch::randint(0, cfg.vocab, {b, t + 1}, torch::TensorOptions().device(dev()).dtype(torch::kInt64));
  auto inp = ids.slice(1, 0, t), tgt = ids.slice(1, 1).reshape({-1});
  const bool ac = dev().is_cuda();
  auto run = [&] {
    model.zero_grad();
    if (ac) lctx::models::compat::set_autocast_cuda_bf16(true);
    auto logits = model.head(model.forward_hidden(inp));
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({b * t, -1}).to(torch::kFloat), tgt);
    if (ac) lctx::models::compat::set_autocast_cuda_bf16(false);
    loss.backward();
    return loss;
  };
  const int di = dev().is_cuda() ? 0 : -1;
  if (di >= 0) lctx::harness::reset_device_peak(di);
  time_calls(st, run);
  st.counters["tokens/s"] = benchmark::Counter(double(b) * t * st.iterations(), benchmark::Counter::kIsRate);
  if (di >= 0)
    if (auto p = lctx::harness::device_peak_bytes(di)) st.counters["peak_device_GB"] = double(*p) * 1e-9;
}
BENCHMARK(kern_mamba_train_step)
    ->ArgNames({"B", "T"})
    ->Args({2, 4096})->Args({16, 4096})
    ->Unit(benchmark::kMillisecond)->Repetitions(3)->DisplayAggregatesOnly(true);

// ---- the machine's dense bf16 matmul rate (the ceiling the pct_bf16_peak counters assume): args n ---------------
void kern_matmul_peak(benchmark::State& st) {
  if (!dev().is_cuda()) return st.SkipWithError("bf16 matmul peak: GPU only");
  const int64_t n = st.range(0);
  auto a = torch::randn({n, n}, opts(true)), b = torch::randn({n, n}, opts(true));
  time_calls(st, [&] { return torch::matmul(a, b); });
  flops_counters(st, 2.0 * n * n * n);
}
BENCHMARK(kern_matmul_peak)->ArgNames({"n"})->Arg(8192)->Unit(benchmark::kMillisecond)->Repetitions(3)->DisplayAggregatesOnly(true);

}  // namespace
