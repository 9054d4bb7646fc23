#include "models/safetensors_header.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace lctx::models {

namespace {
constexpr size_t kMaxRank = 16;
constexpr uint64_t kMaxHeader = uint64_t(100) << 20;

bool as_u64(const nlohmann::json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}
}  // namespace

int safetensors_dtype_size(std::string_view dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "BF16" || dtype == "F16") return 2;
  return 0;
}

uint64_t safetensors_header_length(const unsigned char first8[8], uint64_t file_size, const std::string& path) {
  if (file_size < 8) throw Error(path + ": corrupt safetensors file: shorter than its 8-byte header length");
  uint64_t hn = 0;
  for (int i = 0; i < 8; ++i) hn |= uint64_t(first8[i]) << (8 * i);
  if (hn < 2 || hn > file_size - 8 || hn > kMaxHeader)
    throw Error(path + ": corrupt safetensors file: header length " + std::to_string(hn) + " out of range");
  return hn;
}

SafetensorsHeader parse_safetensors_header(std::string_view text, uint64_t data_size, const std::string& path) {
  auto bad = [&](const std::string& why) { return Error(path + ": corrupt safetensors file: " + why); };
  auto header = nlohmann::json::parse(text, nullptr, false);
  if (header.is_discarded()) throw bad("header is not valid JSON");
  if (!header.is_object()) throw bad("header is not a JSON object");
  SafetensorsHeader out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const auto& v = it.value();
    if (it.key() == "__metadata__") {
      if (!v.is_object()) throw bad("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m)
        if (!m.value().is_string()) throw bad("__metadata__ value '" + m.key() + "' is not a string");
      out.metadata = v;
      continue;
    }
    SafetensorsEntry e;
    e.name = it.key();
    if (e.name.empty()) throw bad("a tensor has an empty name");
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
        !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      throw bad("entry '" + e.name + "' lacks dtype/shape/data_offsets");
    e.dtype = v["dtype"].get<std::string>();
    const int es = safetensors_dtype_size(e.dtype);
    if (es == 0)
      throw Error(path + ": tensor '" + e.name + "' has unsupported dtype " + e.dtype.substr(0, 32) +
                  " (F32, BF16, F16)");
    if (v["shape"].size() > kMaxRank) throw bad("entry '" + e.name + "' has more than 16 dimensions");
    // The element count and byte size are computed without overflow and must fit the data section, so an
    // absurd shape is refused here and never reaches an allocator.
    for (const auto& d : v["shape"]) {
      uint64_t n = 0;
      if (!as_u64(d, &n) || n > uint64_t(INT64_MAX)) throw bad("entry '" + e.name + "' has a bad shape");
      e.shape.push_back(static_cast<int64_t>(n));
    }
    uint64_t bytes = std::count(e.shape.begin(), e.shape.end(), 0) ? 0 : static_cast<uint64_t>(es);
    for (int64_t n : e.shape)
      if (bytes && (__builtin_mul_overflow(bytes, static_cast<uint64_t>(n), &bytes) || bytes > data_size))
        throw bad("entry '" + e.name + "' has a shape larger than the file");
    if (!as_u64(v["data_offsets"][0], &e.begin) || !as_u64(v["data_offsets"][1], &e.end))
      throw bad("entry '" + e.name + "' has bad data_offsets");
    if (e.end < e.begin || e.end - e.begin != bytes) throw bad("entry '" + e.name + "' size does not match its shape");
    if (e.end > data_size) throw bad("truncated (tensor '" + e.name + "' ends past the end of the file)");
    out.entries.push_back(std::move(e));
  }
  std::sort(out.entries.begin(), out.entries.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  uint64_t pos = 0;
  for (const auto& e : out.entries) {
    if (e.begin != pos) throw bad(e.begin < pos ? "tensor data overlaps" : "hole in the tensor data");
    pos = e.end;
  }
  if (pos != data_size) throw bad("trailing bytes after the tensor data");
  return out;
}

}  // namespace lctx::models
