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
}  // namespace lctx_test
