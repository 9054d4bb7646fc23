// Safetensors reader/writer and checkpoint folders (see checkpoint.hpp and model.hpp).
#include "models/checkpoint.hpp"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "models/model.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/version.hpp"
#include "models/safetensors_header.hpp"

namespace fs = std::filesystem;

namespace lctx::models {
namespace {

bool little_endian_host() {
  const uint16_t one = 1;
  uint8_t b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

const char* dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return "F32";
    case torch::kBFloat16: return "BF16";
    case torch::kHalf: return "F16";
    default: return nullptr;
  }
}
bool dtype_from_name(const std::string& s, torch::ScalarType* t) {
  if (s == "F32") *t = torch::kFloat;
  else if (s == "BF16") *t = torch::kBFloat16;
  else if (s == "F16") *t = torch::kHalf;
  else return false;
  return true;
}

// Writes the parts to PATH.tmp, then renames it over PATH (same directory, so the rename is atomic).
void write_atomic(const std::string& path, const std::vector<std::pair<const char*, size_t>>& parts) {
  AtomicFile f(path);
  for (const auto& [p, n] : parts) f.write(std::string_view(p, n));
  f.commit();
}

}  // namespace

void write_safetensors(const std::string& path, const NamedTensors& tensors, const nlohmann::json& metadata) {
  if (!little_endian_host()) throw Error("safetensors: big-endian hosts are not supported");
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.is_object()) throw Error("safetensors: metadata must be a JSON object");
  if (!metadata.empty()) {
    nlohmann::ordered_json md = nlohmann::ordered_json::object();
    for (auto it = metadata.begin(); it != metadata.end(); ++it) {
      if (!it.value().is_string()) throw Error("safetensors: metadata value '" + it.key() + "' must be a string");
      md[it.key()] = it.value().get<std::string>();
    }
    header["__metadata__"] = md;
  }
  std::vector<torch::Tensor> data;
  std::set<std::string> names;
  size_t offset = 0;
  for (const auto& [name, t0] : tensors) {
    if (name.empty() || name == "__metadata__") throw Error("safetensors: bad tensor name '" + name + "'");
    if (!names.insert(name).second) throw Error("safetensors: duplicate tensor name '" + name + "'");
    const char* dn = dtype_name(t0.scalar_type());
    if (!dn) throw Error("safetensors: tensor '" + name + "' has unsupported dtype " +
                         std::string(c10::toString(t0.scalar_type())) + " (F32, BF16, F16 only)");
    auto t = t0.detach().to(torch::kCPU).contiguous();
    const size_t nbytes = size_t(t.numel()) * t.element_size();
    header[name] = {{"dtype", dn}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(t);
  }
  std::string hs = header.dump();
  while ((8 + hs.size()) % 8) hs.push_back(' ');  // data starts 8-byte aligned
  uint64_t n = hs.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = char((n >> (8 * i)) & 0xff);
  std::vector<std::pair<const char*, size_t>> parts{{len, 8}, {hs.data(), hs.size()}};
  for (const auto& t : data) parts.push_back({static_cast<const char*>(t.data_ptr()), size_t(t.numel()) * t.element_size()});
  write_atomic(path, parts);
}

SafetensorsFile read_safetensors(const std::string& path) {
  if (!little_endian_host()) throw Error("safetensors: big-endian hosts are not supported");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read " + path + ": " + std::strerror(errno));
  f.seekg(0, std::ios::end);
  const uint64_t size = uint64_t(f.tellg());
  f.seekg(0);
  auto bad = [&](const std::string& why) { return Error(path + ": corrupt safetensors file: " + why); };
  unsigned char len[8] = {0};
  if (size >= 8) f.read(reinterpret_cast<char*>(len), 8);
  const uint64_t hn = safetensors_header_length(len, size, path);
  std::string hs(hn, '\0');
  f.read(hs.data(), std::streamsize(hn));
  if (!f) throw bad("truncated header");
  auto header = parse_safetensors_header(hs, size - 8 - hn, path);
  SafetensorsFile out;
  out.metadata = header.metadata;
  for (const auto& e : header.entries) {
    torch::ScalarType dt = torch::kFloat;
    dtype_from_name(e.dtype, &dt);
    auto t = torch::empty(e.shape, torch::TensorOptions().dtype(dt));
    f.seekg(std::streamoff(8 + hn + e.begin));
    f.read(static_cast<char*>(t.data_ptr()), std::streamsize(e.end - e.begin));
    if (!f) throw bad("truncated while reading '" + e.name + "'");
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

NamedTensors model_tensors(torch::nn::Module& model) {
  NamedTensors out;
  for (const auto& p : model.named_parameters(true)) out.emplace_back(p.key(), p.value().detach().to(torch::kCPU).contiguous());
  for (const auto& b : model.named_buffers(true)) out.emplace_back(b.key(), b.value().detach().to(torch::kCPU).contiguous());
  return out;
}

void save_checkpoint(const std::string& dir, Model& model, const nlohmann::json& extra_config) {
  if (!extra_config.is_null() && !extra_config.is_object()) throw Error("save_checkpoint: extra config must be a JSON object");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) throw Error("cannot create checkpoint folder " + dir);
  nlohmann::json cfg = nlohmann::json::object();
  if (extra_config.is_object()) cfg = extra_config;
  cfg["arch"] = model.config();
  if (!cfg.contains("tokenizer_hash")) cfg["tokenizer_hash"] = "";
  if (!cfg.contains("train")) cfg["train"] = nlohmann::json::object();
  if (!cfg.contains("lctx_version")) cfg["lctx_version"] = lctx::version_string();
  nlohmann::json md = {{"format", "pt"}, {"lctx_kind", model.kind()}};
  write_safetensors((fs::path(dir) / kCheckpointWeights).string(), model_tensors(model), md);
  const std::string text = cfg.dump(2) + "\n";
  write_atomic((fs::path(dir) / kCheckpointConfig).string(), {{text.data(), text.size()}});
}

Checkpoint load_checkpoint(const std::string& dir, const std::string& expect_tokenizer_hash,
                           const torch::Device& device, const nlohmann::json& arch_override) {
  const std::string cpath = (fs::path(dir) / kCheckpointConfig).string();
  const std::string wpath = (fs::path(dir) / kCheckpointWeights).string();
  if (!fs::is_directory(dir)) throw Error("checkpoint " + dir + " is not a folder");
  std::ifstream cf(cpath);
  if (!cf) throw Error("checkpoint " + dir + ": missing " + kCheckpointConfig);
  std::stringstream ss;
  ss << cf.rdbuf();
  Checkpoint ck;
  try {
    ck.config = nlohmann::json::parse(ss.str());
  } catch (const std::exception&) {
    throw Error("checkpoint " + dir + ": " + kCheckpointConfig + " is not valid JSON");
  }
  if (!ck.config.is_object() || !ck.config.contains("arch"))
    throw Error("checkpoint " + dir + ": " + kCheckpointConfig + " has no \"arch\"");
  if (ck.config.contains("tokenizer_hash") && !ck.config["tokenizer_hash"].is_string())
    throw Error(cpath + ": \"tokenizer_hash\" must be a string, got " + ck.config["tokenizer_hash"].dump().substr(0, 40));
  const std::string hash = ck.config.value("tokenizer_hash", std::string());
  if (!expect_tokenizer_hash.empty() && hash != expect_tokenizer_hash)
    throw Error("checkpoint " + dir + " was trained with tokenizer " + (hash.empty() ? "(unknown)" : hash) +
                ", not the tokenizer in use (" + expect_tokenizer_hash + ")");
  if (!ck.config["arch"].is_object()) throw Error("checkpoint " + dir + ": \"arch\" is not an object");
  ck.config["arch"].update(arch_override);
  auto file = read_safetensors(wpath);  // its shapes are checked before the model is allocated
  try {
    ck.model = build_model(ck.config["arch"]);
  } catch (const Error& e) {
    throw Error(cpath + (arch_override.empty() ? "" : " with the overriding keys") + ": " + e.what());
  } catch (const std::bad_alloc&) {
    throw Error(cpath + ": the \"arch\" describes a model too large for this machine's memory");
  } catch (const c10::Error& e) {
    throw Error(cpath + ": the \"arch\" cannot be built (too large for memory?): " +
                std::string(e.what_without_backtrace()).substr(0, 200));
  }
  std::map<std::string, torch::Tensor> stored(file.tensors.begin(), file.tensors.end());
  torch::NoGradGuard ng;
  std::set<std::string> seen;
  auto assign = [&](const std::string& name, torch::Tensor& dst) {
    auto it = stored.find(name);
    if (it == stored.end()) throw Error("checkpoint " + dir + ": tensor '" + name + "' is missing");
    if (it->second.sizes() != dst.sizes()) {
      std::ostringstream m;
      m << "checkpoint " << dir << ": tensor '" << name << "' has shape " << it->second.sizes() << ", the model expects "
        << dst.sizes();
      throw Error(m.str());
    }
    if (!at::isFloatingType(dst.scalar_type()))
      throw Error("checkpoint " + dir + ": tensor '" + name + "' is not floating point in the model");
    if (!torch::isfinite(it->second).all().item<bool>())
      throw Error(wpath + ": tensor '" + name + "' holds NaN or infinite values (a diverged or corrupt checkpoint)");
    dst.copy_(it->second);
    seen.insert(name);
  };
  for (auto& p : ck.model->named_parameters(true)) assign(p.key(), p.value());
  for (auto& b : ck.model->named_buffers(true)) assign(b.key(), b.value());
  for (const auto& [name, t] : stored)
    if (!seen.count(name)) throw Error("checkpoint " + dir + ": unexpected tensor '" + name + "' (not in the " +
                                       ck.model->kind() + " model)");
  ck.model->to(device);
  ck.model->eval();
  return ck;
}

}  // namespace lctx::models
