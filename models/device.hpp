// The --device of every command that runs a model, parsed in one place.
#pragma once
#include <string>

#include <c10/core/Device.h>

namespace lctx::models {

// "cpu", "cuda" (= cuda:0) or "cuda:N" -> a device that exists here. Throws Error for anything else, or when
// CUDA or device N is not available.
c10::Device parse_device(const std::string& device);

}  // namespace lctx::models
