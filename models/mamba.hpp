// Mamba baseline (selective SSM, Gu & Dao 2023): token embedding -> n_layers residual blocks
// x + Mixer(RMSNorm(x)) -> final RMSNorm -> LM head. Mixer: in_proj -> (x, z); causal depthwise conv1d
// (width d_conv) + SiLU on x; x_proj -> (dt, B, C); dt = softplus(dt_proj(dt)); selective scan with
// A = -exp(A_log) and skip D; gate by SiLU(z); out_proj. Training uses kernels::selective_scan (CUDA: the
// fused forward and backward kernels; CPU: the chunked LibTorch reference); streaming keeps per layer the
// last d_conv-1 conv inputs and the SSM state [d_inner, d_state].
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/config.hpp"
#include "models/layers.hpp"
#include "models/model.hpp"

namespace lctx::models {

struct MambaLayerState {
  torch::Tensor conv;  // [B, d_inner, d_conv-1]: the last conv inputs, oldest first
  torch::Tensor ssm;   // [B, d_inner, d_state] float32
};

struct MambaMixerImpl : torch::nn::Module {
  explicit MambaMixerImpl(const MambaConfig& c);
  // x [B, T, C]. With st: continues from (and updates) the streamed state; without: starts from zeros.
  torch::Tensor forward(const torch::Tensor& x, MambaLayerState* st = nullptr);
  MambaConfig cfg;
  torch::nn::Linear in_proj{nullptr}, x_proj{nullptr}, dt_proj{nullptr}, out_proj{nullptr};
  torch::Tensor conv_weight, conv_bias, A_log, D;  // [Di, 1, K], [Di], [Di, N], [Di]
};
TORCH_MODULE(MambaMixer);

struct MambaBlockImpl : torch::nn::Module {
  explicit MambaBlockImpl(const MambaConfig& c);
  torch::Tensor forward(const torch::Tensor& x, MambaLayerState* st = nullptr);
  RMSNorm norm{nullptr};
  MambaMixer mixer{nullptr};
};
TORCH_MODULE(MambaBlock);

// Mamba's own initialisation of a mixer's SSM parameters (dt_proj weight and bias from [dt_min, dt_max],
// A_log = log(1..d_state), D = 1), to apply after init_weights (which sets every linear to N(0, 0.02)).
void init_mamba_ssm(MambaMixerImpl& m, const MambaConfig& cfg);
int64_t mamba_state_bytes(const MambaLayerState& l);

struct MambaState : StreamState {
  std::vector<MambaLayerState> layers;
  int64_t block = 0;  // StreamOptions::block
  int64_t bytes() const;
};

class MambaModel : public Model {
 public:
  explicit MambaModel(const MambaConfig& cfg);
  std::string kind() const override { return "mamba"; }
  nlohmann::json config() const override { return cfg_.to_json(); }
  int64_t vocab_size() const override { return cfg_.vocab; }
  torch::Tensor forward_hidden(const torch::Tensor& ids) override;
  torch::Tensor head(const torch::Tensor& hidden) override;
  std::unique_ptr<StreamState> begin(const StreamOptions& opt = {}) override;
  torch::Tensor prefill(StreamState& st, const torch::Tensor& ids) override;
  const MambaConfig& mamba_config() const { return cfg_; }

 private:
  MambaConfig cfg_;
  EmbeddingHead emb_{nullptr};
  std::vector<MambaBlock> blocks_;
  RMSNorm final_norm_{nullptr};
};

}  // namespace lctx::models
