// The header of a safetensors file, parsed and checked without LibTorch (so the checks can be fuzzed on their
// own): 8-byte little-endian header length, a JSON object of tensor entries {dtype, shape, data_offsets} and an
// optional "__metadata__" object of strings. read_safetensors (checkpoint.cpp) reads the tensor bytes after it.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lctx::models {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;             // "F32", "BF16" or "F16"
  std::vector<int64_t> shape;    // every dimension >= 0; the element count fits in the file
  uint64_t begin = 0, end = 0;   // byte range inside the data section
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // sorted by data offset, contiguous, covering the data section
  nlohmann::json metadata = nlohmann::json::object();
};

// Bytes per element of a supported dtype name; 0 for any other.
int safetensors_dtype_size(std::string_view dtype);

// The header length stored in the first 8 bytes of a file of `file_size` bytes. Throws Error naming `path`.
uint64_t safetensors_header_length(const unsigned char first8[8], uint64_t file_size, const std::string& path);

// Parses and checks the JSON header `text` of a file whose data section has `data_size` bytes: every entry
// well-formed, sizes matching shapes (no overflow), offsets in range, no overlap, hole or trailing bytes.
// Throws Error("PATH: corrupt safetensors file: ...") or Error("PATH: tensor 'X' has unsupported dtype ...").
SafetensorsHeader parse_safetensors_header(std::string_view text, uint64_t data_size, const std::string& path);

}  // namespace lctx::models
