// Device for the model equivalence tests: LCTX_TEST_DEVICE=cuda (scripts/gpu_batch.sh) runs them on the GPU,
// default cpu. On CUDA the float32 tolerance is looser: cuDNN/cuBLAS may use TF32 and other reduction orders.
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace lctx_test {
inline torch::Device test_device() {
  const char* d = std::getenv("LCTX_TEST_DEVICE");
  return torch::Device(d && *d ? d : "cpu");
}
inline double device_tol(double cpu_tol) { return test_device().is_cuda() ? std::max(cpu_tol, 2e-3) : cpu_tol; }
}  // namespace lctx_test
