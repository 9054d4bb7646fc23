// Fuzzes the safetensors header checks of read_safetensors: the input is a whole .safetensors file. Every
// input must either be refused with lctx::Error or yield entries that exactly tile the data section.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "models/safetensors_header.hpp"
#include "core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lctx::models;
  unsigned char first8[8] = {0};
  for (size_t i = 0; i < 8 && i < size; ++i) first8[i] = data[i];
  try {
    const uint64_t hn = safetensors_header_length(first8, size, "fuzz.safetensors");
    const std::string text(reinterpret_cast<const char*>(data) + 8, hn);
    const uint64_t data_size = size - 8 - hn;
    auto h = parse_safetensors_header(text, data_size, "fuzz.safetensors");
    uint64_t pos = 0;
    for (const auto& e : h.entries) {
      uint64_t numel = 1;
      for (int64_t d : e.shape) {
        if (d < 0) std::abort();
        numel *= static_cast<uint64_t>(d);
      }
      if (e.begin != pos || e.end - e.begin != numel * safetensors_dtype_size(e.dtype)) std::abort();
      pos = e.end;
    }
    if (pos != data_size) std::abort();
  } catch (const lctx::Error&) {
  }
  return 0;
}
