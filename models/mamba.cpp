// Mamba baseline model (see mamba.hpp).
#include "models/mamba.hpp"

#include <cmath>

#include "kernels/kernels.hpp"
#include "core/error.hpp"

namespace lctx::models {

static torch::nn::Linear linear(int64_t in, int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

MambaMixerImpl::MambaMixerImpl(const MambaConfig& c) : cfg(c) {
  const int64_t d = c.d_model, di = c.d_inner(), n = c.d_state, r = c.rank(), k = c.d_conv;
  in_proj = register_module("in_proj", linear(d, 2 * di, false));
  const double cb = 1.0 / std::sqrt(double(k));
  conv_weight = register_parameter("conv_weight", torch::empty({di, 1, k}).uniform_(-cb, cb));
  conv_bias = register_parameter("conv_bias", torch::empty({di}).uniform_(-cb, cb));
  x_proj = register_module("x_proj", linear(di, r + 2 * n, false));
  dt_proj = register_module("dt_proj", linear(r, di, true));
  out_proj = register_module("out_proj", linear(di, d, false));
  A_log = register_parameter("A_log", torch::log(torch::arange(1, n + 1, torch::kFloat)).repeat({di, 1}));
  D = register_parameter("D", torch::ones({di}));
}

torch::Tensor MambaMixerImpl::forward(const torch::Tensor& x, MambaLayerState* st) {
  const int64_t b = x.size(0), t = x.size(1), di = cfg.d_inner(), n = cfg.d_state, r = cfg.rank(), k = cfg.d_conv;
  auto xz = in_proj(x);
  auto xi = xz.slice(-1, 0, di), z = xz.slice(-1, di);
  // Causal depthwise conv over [previous k-1 inputs | this block].
  auto xc = xi.transpose(1, 2);  // [B, Di, T]
  torch::Tensor prev = (st && st->conv.defined()) ? st->conv.to(xc.scalar_type())
                                                  : torch::zeros({b, di, k - 1}, xc.options());
  auto xin = torch::cat({prev, xc}, 2);
  auto conv = torch::conv1d(xin, conv_weight.to(xc.scalar_type()), conv_bias.to(xc.scalar_type()),
                            torch::IntArrayRef{1}, torch::IntArrayRef{0}, torch::IntArrayRef{1}, di);
  if (st) st->conv = xin.slice(2, xin.size(2) - (k - 1)).clone();
  auto u = torch::silu(conv).transpose(1, 2);  // [B, T, Di]
  auto dbc = x_proj(u);
  auto dt = torch::softplus(dt_proj(dbc.slice(-1, 0, r)));
  auto Bm = dbc.slice(-1, r, r + n);
  auto Cm = dbc.slice(-1, r + n, r + 2 * n);
  auto A = -torch::exp(A_log.to(torch::kFloat));
  torch::Tensor h_last;
  auto y = kernels::selective_scan(u, dt, A, Bm, Cm, D, st ? st->ssm : torch::Tensor(), st ? &h_last : nullptr,
                                   cfg.scan_chunk);
  if (st) st->ssm = h_last;
  (void)t;
  return out_proj(y * torch::silu(z));
}

MambaBlockImpl::MambaBlockImpl(const MambaConfig& c) {
  norm = register_module("norm", RMSNorm(c.d_model, c.norm_eps));
  mixer = register_module("mixer", MambaMixer(c));
}
torch::Tensor MambaBlockImpl::forward(const torch::Tensor& x, MambaLayerState* st) {
  return x + mixer->forward(norm(x), st);
}

int64_t mamba_state_bytes(const MambaLayerState& l) {
  int64_t s = 0;
  if (l.conv.defined()) s += l.conv.numel() * l.conv.element_size();
  if (l.ssm.defined()) s += l.ssm.numel() * l.ssm.element_size();
  return s;
}

int64_t MambaState::bytes() const {
  int64_t s = 0;
  for (const auto& l : layers) s += mamba_state_bytes(l);
  return s;
}

void init_mamba_ssm(MambaMixerImpl& m, const MambaConfig& cfg) {
  torch::NoGradGuard ng;
  const double lo = std::log(cfg.dt_min), hi = std::log(cfg.dt_max);
  const double ws = 1.0 / std::sqrt(double(cfg.rank()));
  m.dt_proj->weight.uniform_(-ws, ws);
  auto dt = torch::exp(torch::rand({cfg.d_inner()}) * (hi - lo) + lo).clamp_min(1e-4);
  m.dt_proj->bias.copy_(dt + torch::log(-torch::expm1(-dt)));  // softplus^-1(dt)
  m.A_log.copy_(torch::log(torch::arange(1, cfg.d_state + 1, torch::kFloat)).repeat({cfg.d_inner(), 1}));
  m.D.fill_(1.0);
}

MambaModel::MambaModel(const MambaConfig& cfg) : cfg_(cfg) {
  emb_ = register_module("emb", EmbeddingHead(cfg.vocab, cfg.d_model, cfg.tie_embeddings));
  auto list = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.n_layers; ++i) {
    blocks_.push_back(MambaBlock(cfg));
    list->push_back(blocks_.back());
  }
  final_norm_ = register_module("final_norm", RMSNorm(cfg.d_model, cfg.norm_eps));
  init_weights(*this, cfg.n_layers);
  for (auto& b : blocks_) init_mamba_ssm(*b->mixer, cfg);
}

torch::Tensor MambaModel::head(const torch::Tensor& hidden) { return emb_->logits(hidden); }

torch::Tensor MambaModel::forward_hidden(const torch::Tensor& ids_in) {
  auto ids = check_batch(ids_in, cfg_.vocab, device());
  auto x = emb_->embed(ids);
  for (auto& b : blocks_) x = b->forward(x, nullptr);
  return final_norm_(x);
}

std::unique_ptr<StreamState> MambaModel::begin(const StreamOptions& opt) {
  if (opt.block < 0) throw Error("mamba: stream option block must be >= 0");
  auto st = std::make_unique<MambaState>();
  st->block = opt.block;  // pruning has nothing to skip here: every layer carries its state to later tokens
  st->layers.resize(blocks_.size());
  return st;
}

torch::Tensor MambaModel::prefill(StreamState& base, const torch::Tensor& ids_in) {
  auto* st = dynamic_cast<MambaState*>(&base);
  if (!st || st->layers.size() != blocks_.size()) throw Error("mamba prefill: state was not made by this model");
  torch::NoGradGuard ng;
  auto ids = check_block(ids_in, cfg_.vocab, device());
  torch::Tensor last;
  const int64_t block = st->block > 0 ? st->block : cfg_.prefill_block;
  for (int64_t i0 = 0; i0 < ids.size(0); i0 += block) {
    auto piece = ids.slice(0, i0, std::min<int64_t>(ids.size(0), i0 + block)).unsqueeze(0);
    auto x = emb_->embed(piece);
    for (size_t l = 0; l < blocks_.size(); ++l) x = blocks_[l]->forward(x, &st->layers[l]);
    st->position += piece.size(1);
    last = x.select(1, piece.size(1) - 1);
  }
  return emb_->logits(final_norm_(last)).reshape({-1});
}

}  // namespace lctx::models
