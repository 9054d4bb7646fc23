// Shared helpers of the model tests.
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "models/model.hpp"

namespace lctx_test {
// Device for the model equivalence tests: LCTX_TEST_DEVICE=cuda (scripts/gpu_batch.sh) runs them on the GPU,
// default cpu. On CUDA the float32 tolerance is looser: cuDNN/cuBLAS may use TF32 and other reduction orders.
inline torch::Device test_device() {
  const char* d = std::getenv("LCTX_TEST_DEVICE");
  return torch::Device(d && *d ? d : "cpu");
}
inline double device_tol(double cpu_tol) { return test_device().is_cuda() ? std::max(cpu_tol, 2e-3) : cpu_tol; }

// Next-token loss on ids[:, :64] before and after 10 Adam steps (lr 3e-3): gradients reach the weights when
// the second is clearly lower. ids: [B, 65] below `vocab`.
inline std::pair<double, double> loss_before_after_10_steps(lctx::models::Model& m, const torch::Tensor& ids,
                                                            int64_t vocab) {
  torch::optim::Adam opt(m.parameters(), torch::optim::AdamOptions(3e-3));
  auto loss_of = [&]() {
    auto lg = m.forward_logits(ids.slice(1, 0, 64));
    return torch::cross_entropy_loss(lg.reshape({-1, vocab}), ids.slice(1, 1).reshape({-1}));
  };
  const double l0 = loss_of().item<double>();
  for (int i = 0; i < 10; ++i) {
    opt.zero_grad();
    auto l = loss_of();
    l.backward();
    opt.step();
  }
  return {l0, loss_of().item<double>()};
}

// Pruned prefill against the full streamed path: the prompt `ids` goes into two states (full: prune off,
// pruned: prune on, both with piece size `block`, 0 = the config's) in calls of `call` tokens (0 = one call),
// then `steps` greedy tokens are decoded into both (the full path's argmax, pushed into both). Returns the
// largest |logit difference| over the last prompt logits and every decoding step; `same_tokens` tells
// whether the pruned path's own argmax agreed at every step. `pruned_rows` / `full_rows`: prunable_rows.
struct PruneCheck {
  double worst = 0;
  bool same_tokens = true;
  int64_t pruned_rows = 0, full_rows = 0;
};
inline PruneCheck prune_vs_full(lctx::models::Model& m, const torch::Tensor& ids, int64_t call, int64_t block,
                                int steps, lctx::models::StreamOptions base = {}) {
  torch::NoGradGuard ng;
  auto full_opt = base, pruned_opt = base;
  full_opt.prune = false;
  pruned_opt.prune = true;
  full_opt.block = pruned_opt.block = block;
  auto sf = m.begin(full_opt), sp = m.begin(pruned_opt);
  const int64_t t = ids.size(0), step = call > 0 ? call : t;
  torch::Tensor lf, lp;
  for (int64_t p = 0; p < t; p += step) {
    auto blk = ids.slice(0, p, std::min(t, p + step));
    lf = m.prefill(*sf, blk);
    lp = m.prefill(*sp, blk);
  }
  PruneCheck r;
  for (int i = 0;; ++i) {
    r.worst = std::max(r.worst, (lf - lp).abs().max().item<double>());
    const auto tf = lf.argmax().item<int64_t>(), tp = lp.argmax().item<int64_t>();
    if (tf != tp) r.same_tokens = false;
    if (i == steps) break;
    auto tok = torch::full({1}, tf, ids.options());
    lf = m.prefill(*sf, tok);
    lp = m.prefill(*sp, tok);
  }
  r.pruned_rows = sp->prunable_rows;
  r.full_rows = sf->prunable_rows;
  return r;
}
}  // namespace lctx_test
