#include "models/device.hpp"

#include <torch/cuda.h>

#include "core/error.hpp"

namespace lctx::models {

c10::Device parse_device(const std::string& d) {
  if (d == "cpu") return c10::Device(c10::kCPU);
  const bool indexed = d.size() > 5 && d.rfind("cuda:", 0) == 0 && d.size() <= 8 &&
                       d.find_first_not_of("0123456789", 5) == std::string::npos;
  if (d == "cuda" || indexed) {
    if (!torch::cuda::is_available())
      throw Error("--device " + d + ": no CUDA device (this LibTorch has no CUDA, or no GPU is visible)");
    c10::Device dev(d == "cuda" ? std::string("cuda:0") : d);
    if (dev.index() >= static_cast<int>(torch::cuda::device_count()))
      throw Error("--device " + d + ": only " + std::to_string(torch::cuda::device_count()) + " CUDA device(s)");
    return dev;
  }
  throw Error("bad --device '" + d + "': expected cpu, cuda or cuda:N");
}

}  // namespace lctx::models
