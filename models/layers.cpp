// Shared LibTorch blocks (see layers.hpp).
#include "models/layers.hpp"

#include <cmath>

#include "kernels/kernels.hpp"
#include "core/error.hpp"

namespace lctx::models {

// ---- RMSNorm --------------------------------------------------------------------------------------------
RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}
torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto xf = x.to(torch::kFloat);
  auto y = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps);
  return (y * weight.to(torch::kFloat)).to(x.scalar_type());
}

// ---- Rope -----------------------------------------------------------------------------------------------
Rope::Rope(int64_t head_dim, double base) : head_dim_(head_dim), base_(base) {
  if (head_dim < 2 || head_dim % 2) throw Error("rope: head_dim must be even, got " + std::to_string(head_dim));
  const int64_t half = head_dim / 2;
  inv_freq_ = torch::pow(base, torch::arange(half, torch::kDouble) * (-2.0 / double(head_dim)));
}
RopeTables Rope::tables(int64_t pos0, int64_t len, const torch::Device& device) const {
  auto pos = torch::arange(pos0, pos0 + len, torch::TensorOptions().dtype(torch::kLong).device(device));
  return tables(pos);
}
RopeTables Rope::tables(const torch::Tensor& positions) const {
  auto ang = positions.to(torch::kDouble).unsqueeze(-1) * inv_freq_.to(positions.device()).unsqueeze(0);
  return {torch::cos(ang).to(torch::kFloat), torch::sin(ang).to(torch::kFloat)};
}
torch::Tensor Rope::apply(const torch::Tensor& x, const RopeTables& t) {
  const int64_t half = x.size(-1) / 2;
  auto c = t.cos.to(x.scalar_type()), s = t.sin.to(x.scalar_type());
  auto x1 = x.slice(-1, 0, half), x2 = x.slice(-1, half);
  return torch::cat({x1 * c - x2 * s, x2 * c + x1 * s}, -1);
}

RopeTables Rope::slice(const RopeTables& t, int64_t off, int64_t len) {
  return {t.cos.narrow(0, off, len), t.sin.narrow(0, off, len)};
}

// ---- SwiGLU ---------------------------------------------------------------------------------------------
int64_t default_mlp_hidden(int64_t d) { return ((8 * d / 3) + 31) / 32 * 32; }
static torch::nn::Linear linear(int64_t in, int64_t out, bool bias = false) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}
SwiGLUImpl::SwiGLUImpl(int64_t d, int64_t hidden) {
  if (hidden <= 0) hidden = default_mlp_hidden(d);
  w_gate = register_module("w_gate", linear(d, hidden));
  w_up = register_module("w_up", linear(d, hidden));
  w_down = register_module("w_down", linear(hidden, d));
}
torch::Tensor SwiGLUImpl::forward(const torch::Tensor& x) { return w_down(torch::silu(w_gate(x)) * w_up(x)); }

// ---- WindowAttention ------------------------------------------------------------------------------------
int64_t KVCache::bytes() const {
  if (!k.defined()) return 0;
  return k.numel() * k.element_size() + v.numel() * v.element_size();
}

WindowAttentionImpl::WindowAttentionImpl(int64_t d_model, int64_t heads, int64_t window_, double rope_base,
                                         bool qk_norm)
    : n_heads(heads), head_dim(d_model / heads), window(window_) {
  if (heads < 1 || d_model % heads)
    throw Error("attention: d_model " + std::to_string(d_model) + " is not a multiple of n_heads " +
                std::to_string(heads));
  if (window < 1) throw Error("attention: window must be >= 1");
  rope = Rope(head_dim, rope_base);
  wq = register_module("wq", linear(d_model, d_model));
  wk = register_module("wk", linear(d_model, d_model));
  wv = register_module("wv", linear(d_model, d_model));
  wo = register_module("wo", linear(d_model, d_model));
  if (qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(head_dim));
    k_norm = register_module("k_norm", RMSNorm(head_dim));
  }
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> WindowAttentionImpl::project(const torch::Tensor& x,
                                                                                     const RopeTables& rt) {
  const int64_t b = x.size(0), t = x.size(1);
  auto heads = [&](const torch::Tensor& y) { return y.view({b, t, n_heads, head_dim}).transpose(1, 2); };
  auto q = heads(wq(x)), k = heads(wk(x));
  if (q_norm) {
    q = q_norm(q);
    k = k_norm(k);
  }
  return {Rope::apply(q, rt), Rope::apply(k, rt), heads(wv(x))};
}
torch::Tensor WindowAttentionImpl::merge_heads(const torch::Tensor& y) {
  return wo(y.transpose(1, 2).reshape({y.size(0), y.size(2), n_heads * head_dim}));
}
torch::Tensor WindowAttentionImpl::forward(const torch::Tensor& x, int64_t pos0) {
  return forward(x, pos0, rope.tables(pos0, x.size(1), x.device()));
}
torch::Tensor WindowAttentionImpl::forward(const torch::Tensor& x, int64_t pos0, const RopeTables& rt) {
  auto [q, k, v] = project(x, rt);
  return merge_heads(kernels::window_attention(q, k, v, window, pos0, pos0));
}
torch::Tensor WindowAttentionImpl::forward_stream(const torch::Tensor& x, int64_t pos0, const RopeTables& rt,
                                                  KVCache& cache, int64_t n_query) {
  auto [q, k, v] = project(x, rt);
  const int64_t n = x.size(1), nq = n_query >= 0 ? std::min(n_query, n) : n;
  if (nq < n) q = q.narrow(2, n - nq, nq);
  torch::Tensor kk = k, vv = v;
  int64_t past = 0;
  if (cache.k.defined() && cache.k.size(2) > 0 && cache.next == pos0) {
    past = cache.k.size(2);
    kk = torch::cat({cache.k, k}, 2);
    vv = torch::cat({cache.v, v}, 2);
  }
  torch::Tensor y = nq > 0 ? kernels::window_attention(q, kk, vv, window, pos0 + n - nq, pos0 - past) : q;
  const int64_t total = kk.size(2), keep = std::min<int64_t>(total, window - 1);
  // Copies, so the cache never pins the (possibly much larger) block tensors.
  cache.k = kk.slice(2, total - keep).clone();
  cache.v = vv.slice(2, total - keep).clone();
  cache.next = pos0 + n;
  return merge_heads(y);
}

// ---- TransformerBlock -----------------------------------------------------------------------------------
TransformerBlockImpl::TransformerBlockImpl(int64_t d_model, int64_t n_heads, int64_t window, int64_t mlp_hidden,
                                           double rope_base, double norm_eps, bool qk_norm) {
  attn_norm = register_module("attn_norm", RMSNorm(d_model, norm_eps));
  attn = register_module("attn", WindowAttention(d_model, n_heads, window, rope_base, qk_norm));
  mlp_norm = register_module("mlp_norm", RMSNorm(d_model, norm_eps));
  mlp = register_module("mlp", SwiGLU(d_model, mlp_hidden));
}
torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x, int64_t pos0, const RopeTables& rt) {
  auto h = x + attn->forward(attn_norm(x), pos0, rt);
  return h + mlp(mlp_norm(h));
}
torch::Tensor TransformerBlockImpl::forward_stream(const torch::Tensor& x, int64_t pos0, const RopeTables& rt,
                                                   KVCache& cache, int64_t n_query) {
  const int64_t n = x.size(1), nq = n_query >= 0 ? std::min(n_query, n) : n;
  auto y = attn->forward_stream(attn_norm(x), pos0, rt, cache, nq);
  auto h = (nq < n ? x.narrow(1, n - nq, nq) : x) + y;
  return h + mlp(mlp_norm(h));
}

// ---- EmbeddingHead --------------------------------------------------------------------------------------
EmbeddingHeadImpl::EmbeddingHeadImpl(int64_t vocab_, int64_t d_model, bool tied_) : vocab(vocab_), tied(tied_) {
  tok = register_module("tok", torch::nn::Embedding(vocab, d_model));
  if (!tied) head = register_module("head", linear(d_model, vocab));
}
torch::Tensor EmbeddingHeadImpl::embed(const torch::Tensor& ids) { return tok(ids); }
torch::Tensor EmbeddingHeadImpl::logits(const torch::Tensor& h) {
  auto y = tied ? torch::matmul(h, tok->weight.to(h.scalar_type()).t()) : head(h);
  return y.to(torch::kFloat);
}

void init_weights(torch::nn::Module& m, int64_t n_layers, bool scale_outputs) {
  torch::NoGradGuard ng;
  const double out_std = scale_outputs ? 0.02 / std::sqrt(2.0 * double(std::max<int64_t>(1, n_layers))) : 0.02;
  auto ends = [](const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
  };
  for (auto& p : m.named_parameters()) {
    const auto& name = p.key();
    auto& t = p.value();
    if (ends(name, "norm.weight") || ends(name, "_norm.weight")) {
      t.fill_(1.0);
    } else if (ends(name, ".bias")) {
      t.zero_();
    } else if (ends(name, "wo.weight") || ends(name, "w_down.weight") || ends(name, "out_proj.weight")) {
      t.normal_(0.0, out_std);
    } else if (ends(name, ".weight") && t.dim() == 2) {
      t.normal_(0.0, 0.02);
    }
  }
}

static torch::Tensor check_ids(const torch::Tensor& ids, int64_t vocab, const torch::Device& device,
                               const char* what) {
  if (!ids.defined() || ids.numel() == 0) throw Error(std::string(what) + ": empty token block");
  if (at::isFloatingType(ids.scalar_type()) || ids.scalar_type() == torch::kBool)
    throw Error(std::string(what) + ": token ids must be integers");
  auto r = ids.to(device, torch::kLong);
  auto mn = r.min().item<int64_t>(), mx = r.max().item<int64_t>();
  if (mn < 0 || mx >= vocab)
    throw Error(std::string(what) + ": token id " + std::to_string(mn < 0 ? mn : mx) + " outside vocab of " +
                std::to_string(vocab));
  return r;
}
torch::Tensor check_block(const torch::Tensor& ids, int64_t vocab, const torch::Device& device) {
  if (ids.defined() && ids.dim() != 1) throw Error("prefill: expected a 1-D block of token ids");
  return check_ids(ids, vocab, device, "prefill");
}
torch::Tensor check_batch(const torch::Tensor& ids, int64_t vocab, const torch::Device& device) {
  if (ids.defined() && ids.dim() != 2) throw Error("forward_logits: expected token ids [B, T]");
  return check_ids(ids, vocab, device, "forward_logits");
}

}  // namespace lctx::models
