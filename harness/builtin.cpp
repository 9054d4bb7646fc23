#include "harness/builtin.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <torch/cuda.h>
#include <torch/torch.h>

#include "harness/memory.hpp"
#include "tasks/sample.hpp"
#include "models/model.hpp"
#include "core/error.hpp"
#include "core/files.hpp"

namespace lctx::harness {

using nlohmann::json;
using clk = std::chrono::steady_clock;

json check_checkpoint(const ModelSpec& spec, const Tokenizer& tokenizer) {
  std::string cfg_path = (std::filesystem::path(spec.path) / "config.json").string();
  if (!std::filesystem::is_directory(spec.path))
    throw Error("model " + spec.spec + ": no checkpoint folder " + spec.path);
  auto cfg = json::parse(read_file(cfg_path), nullptr, false);
  if (!cfg.is_object()) throw Error("model " + spec.spec + ": " + cfg_path + " is not valid JSON");
  std::string kind;
  if (cfg.contains("arch") && cfg["arch"].is_object() && cfg["arch"].contains("kind") && cfg["arch"]["kind"].is_string())
    kind = cfg["arch"]["kind"].get<std::string>();
  if (kind.empty()) throw Error("model " + spec.spec + ": " + cfg_path + " has no arch.kind");
  if (kind != spec.kind)
    throw Error("model " + spec.spec + ": the checkpoint is a '" + kind + "' model, not '" + spec.kind +
                "' (use " + kind + ":" + spec.path + ")");
  if (cfg.contains("tokenizer_hash") && !cfg["tokenizer_hash"].is_string())
    throw Error("model " + spec.spec + ": " + cfg_path + ": \"tokenizer_hash\" must be a string, got " +
                cfg["tokenizer_hash"].dump().substr(0, 40));
  std::string th = cfg.value("tokenizer_hash", std::string());
  if (th.empty())
    std::fprintf(stderr, "lctx: warning: model %s: %s records no tokenizer_hash, so its tokenizer cannot be checked "
                 "against %s\n", spec.spec.c_str(), cfg_path.c_str(), tokenizer.path().c_str());
  if (!th.empty() && th != tokenizer.hash())
    throw Error("model " + spec.spec + " was trained with tokenizer " + th + " but samples would use " +
                tokenizer.path() + " (" + tokenizer.hash() + "); pass the checkpoint's tokenizer with --tokenizer");
  return cfg;
}

BuiltinModel::BuiltinModel(const ModelSpec& spec, std::shared_ptr<const Tokenizer> tokenizer,
                           const BuiltinOptions& opt)
    : spec_(spec), tok_(std::move(tokenizer)), opt_(opt) {
  if (opt_.block < 0) throw Error("--block must be >= 1 (or 0: the device's default)");
  if (opt_.precision != "fp32" && opt_.precision != "bf16")
    throw Error("--precision must be fp32 or bf16, got '" + opt_.precision + "'");
  auto cfg = check_checkpoint(spec_, *tok_);
  // A checkpoint without a recorded tokenizer hash (hand-built) is accepted with the tokenizer given.
  bool has_hash = !cfg.value("tokenizer_hash", std::string()).empty();
  auto ck = models::load_checkpoint(spec_.path, has_hash ? tok_->hash() : std::string(), opt_.device);
  model_ = ck.model;
  config_ = ck.config;
  model_->eval();
  // A checkpoint trained on BOS-prefixed sequences says so in its train config.
  if (config_.contains("train") && config_["train"].is_object())
    add_bos_ = config_["train"].value("add_bos", false);
  if (model_->vocab_size() < tok_->vocab_size())
    throw Error("model " + spec_.spec + ": vocabulary " + std::to_string(model_->vocab_size()) +
                " is smaller than the tokenizer's " + std::to_string(tok_->vocab_size()));
}

BuiltinModel::~BuiltinModel() = default;

std::string BuiltinModel::device_name() const {
  auto d = model_->device();
  if (d.is_cuda()) return "cuda:" + std::to_string(d.has_index() ? d.index() : 0);
  return "cpu";
}

Completion BuiltinModel::complete(const Sample& sample, int max_new) {
  if (!sample.prompt_ids.empty()) return complete(sample.prompt_ids, max_new);
  return complete(tok_->encode_long(sample.prompt_text()), max_new);
}

Completion BuiltinModel::complete(const std::vector<int32_t>& prompt, int max_new) {
  std::lock_guard<std::mutex> lock(mu_);
  torch::NoGradGuard no_grad;
  std::vector<int64_t> ids;
  ids.reserve(prompt.size() + 1);
  if (add_bos_ && tok_->bos_id() >= 0) ids.push_back(tok_->bos_id());
  ids.insert(ids.end(), prompt.begin(), prompt.end());
  if (ids.empty()) throw Error("empty prompt");
  const auto dev = model_->device();
  const bool cuda = dev.is_cuda();
  const int di = cuda ? (dev.has_index() ? dev.index() : 0) : 0;
  if (cuda) {
    torch::cuda::synchronize(di);
    reset_device_peak(di);
  }
  bool host_reset = reset_host_peak();
  int64_t rss0 = host_rss_bytes();

  Completion out;
  auto t0 = clk::now();
  models::StreamOptions so;
  so.kv_offload = opt_.kv_offload;
  so.prune = opt_.prune;
  so.precision = opt_.precision;
  so.block = opt_.block > 0 ? opt_.block : (cuda ? 65536 : 4096);
  auto st = model_->begin(so);
  auto all = torch::from_blob(ids.data(), {static_cast<int64_t>(ids.size())}, torch::kInt64);
  // One call: pruning works per call (only the call's last positions reach the upper layers).
  torch::Tensor logits = model_->prefill(*st, cuda ? all.to(dev, /*non_blocking=*/false) : all.clone());
  const int64_t upper_rows = st->prunable_rows;
  out.prefill_path = st->pruned ? "pruned" : "full";
  out.prefill_upper_positions = upper_rows;
  if (cuda) torch::cuda::synchronize(di);
  auto t1 = clk::now();
  std::vector<int32_t> gen;
  if (max_new > 0) gen = model_->generate(*st, logits, max_new, tok_->eos_id());
  if (cuda) torch::cuda::synchronize(di);
  auto t2 = clk::now();

  out.text = tok_->decode(gen);
  out.tokens = gen;
  out.completion_tokens = static_cast<int64_t>(gen.size());
  out.finish_reason = static_cast<int>(gen.size()) < max_new ? "stop" : "length";
  out.prefill_s = std::chrono::duration<double>(t1 - t0).count();
  out.decode_s = std::chrono::duration<double>(t2 - t1).count();
  if (cuda) {
    if (auto p = device_peak_bytes(di)) out.peak_device_mb = static_cast<double>(*p) / (1024.0 * 1024.0);
  } else if (host_reset) {
    // CPU: the growth of resident memory while the sample ran (model state, activations).
    int64_t peak = host_peak_rss_bytes();
    out.peak_device_mb = static_cast<double>(std::max<int64_t>(0, peak - rss0)) / (1024.0 * 1024.0);
  }
  return out;
}

}  // namespace lctx::harness
