// models::parse_device: the one parser of --device (lctx run, serve, train, train-eval).
#include <torch/torch.h>

#include "core/error.hpp"
#include "models/device.hpp"
#include "tests/catch.hpp"

using lctx::models::parse_device;

TEST_CASE("parse_device: cpu, cuda, cuda:N; anything else is a one-line error") {
  CHECK(parse_device("cpu") == c10::Device(c10::kCPU));
  for (const char* bad : {"gpu", "", "CPU", "cuda:", "cuda:x", "cuda:1x", "cuda:-1", "cuda:0:1", "cuda:123456789"})
    REQUIRE_THROWS_WITH(parse_device(bad), lctx_test::Contains("bad --device '" + std::string(bad) + "'"));
  if (!torch::cuda::is_available()) {
    REQUIRE_THROWS_WITH(parse_device("cuda"), lctx_test::Contains("no CUDA device"));
    REQUIRE_THROWS_WITH(parse_device("cuda:0"), lctx_test::Contains("no CUDA device"));
  } else {
    CHECK(parse_device("cuda") == c10::Device(c10::kCUDA, 0));
    CHECK(parse_device("cuda:0") == c10::Device(c10::kCUDA, 0));
    const auto n = static_cast<int>(torch::cuda::device_count());
    REQUIRE_THROWS_WITH(parse_device("cuda:" + std::to_string(n)), lctx_test::Contains("CUDA device(s)"));
  }
}
