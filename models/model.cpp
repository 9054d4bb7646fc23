// Model base pieces: greedy generation, device, and the build_model registry.
#include "models/model.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "models/mamba.hpp"
#include "models/swa.hpp"
#include "core/error.hpp"
#if __has_include("models/hsa.hpp")
#include "models/hsa.hpp"
#define LCTX_MODELS_HAVE_HSA 1
#endif

namespace lctx::models {

int configure_cpu_threads(int threads) {
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(n);
  // Looked up at run time: the BLAS behind LibTorch is chosen by the system (OpenBLAS, reference BLAS, MKL).
  using SetThreads = void (*)(int);
  if (!std::getenv("OPENBLAS_NUM_THREADS"))
    if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(1);
  return n;
}

std::vector<int32_t> Model::generate(StreamState& st, const torch::Tensor& last_logits, int max_new,
                                     int32_t eos_id) {
  torch::NoGradGuard ng;
  std::vector<int32_t> out;
  if (max_new <= 0) return out;
  if (!last_logits.defined() || last_logits.numel() != vocab_size())
    throw Error("generate: last_logits must hold " + std::to_string(vocab_size()) + " values");
  auto logits = last_logits.reshape({-1});
  const auto dev = device();
  for (int i = 0; i < max_new; ++i) {
    const auto tok = int32_t(logits.argmax().item<int64_t>());
    if (tok == eos_id) break;
    out.push_back(tok);
    logits = prefill(st, torch::full({1}, int64_t(tok), torch::TensorOptions().dtype(torch::kLong).device(dev)));
  }
  return out;
}

torch::Device Model::device() const {
  for (const auto& p : parameters()) return p.device();
  for (const auto& b : buffers()) return b.device();
  return torch::Device(torch::kCPU);
}

namespace {
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, ModelFactory>& registry() {
  static std::map<std::string, ModelFactory> r;
  return r;
}
std::map<std::string, ModelFactory> builtins() {
  std::map<std::string, ModelFactory> b;
  b["swa"] = [](const nlohmann::json& j) -> std::shared_ptr<Model> { return std::make_shared<SwaModel>(SwaConfig::from_json(j)); };
  b["mamba"] = [](const nlohmann::json& j) -> std::shared_ptr<Model> { return std::make_shared<MambaModel>(MambaConfig::from_json(j)); };
#ifdef LCTX_MODELS_HAVE_HSA
  b["hsa"] = [](const nlohmann::json& j) -> std::shared_ptr<Model> { return std::make_shared<HsaModel>(HsaConfig::from_json(j)); };
#endif
  return b;
}
}  // namespace

void register_model_kind(const std::string& kind, ModelFactory factory) {
  std::lock_guard<std::mutex> lk(registry_mutex());
  registry()[kind] = std::move(factory);
}

std::vector<std::string> model_kinds() {
  std::map<std::string, ModelFactory> all = builtins();
  {
    std::lock_guard<std::mutex> lk(registry_mutex());
    for (const auto& [k, f] : registry()) all[k] = f;
  }
  std::vector<std::string> out;
  for (const auto& [k, f] : all) out.push_back(k);
  return out;
}

std::shared_ptr<Model> build_model(const nlohmann::json& arch) {
  if (!arch.is_object()) throw Error("model config: expected a JSON object");
  if (!arch.contains("kind") || !arch.at("kind").is_string())
    throw Error("model config: missing \"kind\" (one of swa, mamba, hsa)");
  const auto kind = arch.at("kind").get<std::string>();
  ModelFactory f;
  {
    std::lock_guard<std::mutex> lk(registry_mutex());
    auto it = registry().find(kind);
    if (it != registry().end()) f = it->second;
  }
  if (!f) {
    auto b = builtins();
    auto it = b.find(kind);
    if (it == b.end()) {
      std::string list;
      for (const auto& k : model_kinds()) list += (list.empty() ? "" : ", ") + k;
      throw Error("model config: unknown kind '" + kind + "' (known: " + list + ")");
    }
    f = it->second;
  }
  return f(arch);
}

}  // namespace lctx::models
