// HSA model: lower sliding-window layers -> chunk encoder (landmark + chunk K/V) -> upper layers with
// sliding-window self-attention + token-level top-k chunk retrieval + MLP. Full forward (training, tests)
// and streamed inference with a chunk memory (landmarks on the device, chunk K/V on the device or in host
// memory). See docs/hsa.md for the equations and the switches.
#include "models/hsa.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/chunk_attention.hpp"
#include "kernels/kernels.hpp"
#include "models/layers.hpp"
#include "models/mamba.hpp"
#include "models/profile.hpp"
#include "models/prune.hpp"
#include "core/error.hpp"

namespace lctx::models {

using torch::indexing::Slice;

namespace {
constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Softmax over the selected scores of each row ([..., K], -inf = empty); rows without a selection -> 0.
torch::Tensor selected_weights(const torch::Tensor& scores) {
  auto any = scores.ne(kNegInf).any(-1, /*keepdim=*/true);
  auto safe = scores.masked_fill(any.logical_not(), 0.0);
  return torch::softmax(safe, -1) * any.to(scores.dtype());
}

torch::Tensor gumbel_like(const torch::Tensor& x) {
  auto u = torch::rand_like(x).clamp(1e-10, 1.0 - 1e-7);
  return -torch::log(-torch::log(u));
}
}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Retrieval building blocks

namespace hsa {

int64_t selected_count(const HsaConfig& c, int64_t n_chunks, bool training) {
  int64_t k = c.topk;
  if (training && c.selection_sparsity == SelectionSparsity::off) k = n_chunks;
  if (training && c.selection_sparsity == SelectionSparsity::enforced)
    k = c.train_topk > 0 ? c.train_topk : std::min(c.topk, std::max<int64_t>(2, n_chunks / c.sparsity_ratio));
  return std::max<int64_t>(0, std::min(k, n_chunks));
}

torch::Tensor chunk_weights(const torch::Tensor& scores, ChunkWeights mode) {
  auto sel = scores.ne(kNegInf);
  if (mode == ChunkWeights::softmax) return selected_weights(scores);
  auto s0 = scores.masked_fill(sel.logical_not(), 0.0);
  const auto f = sel.to(scores.dtype());
  if (mode == ChunkWeights::stick_breaking) {
    // w_k = sigmoid(s_k) prod_{j<k} sigmoid(-s_j) = exp(s_k - sum_{j<=k} softplus(s_j)), empty slots skipped.
    auto sp = torch::nn::functional::softplus(s0) * f;
    return torch::exp(s0 - sp.cumsum(-1)) * f;
  }
  // softmax1: exp(s_k) / (1 + sum_j exp(s_j)): the logsumexp includes a zero logit (finite, also with no
  // selection, so the backward of rows without chunks stays finite).
  auto shape = scores.sizes().vec();
  shape.back() = 1;
  auto zero = torch::zeros(shape, scores.options());
  auto lse = torch::cat({scores, zero}, -1).logsumexp(-1, /*keepdim=*/true);
  return torch::exp(s0 - lse) * f;
}

torch::Tensor dense_chunk_weights(const torch::Tensor& scores, const torch::Tensor& selected, ChunkWeights mode) {
  auto any = selected.any(-1, true);
  if (mode == ChunkWeights::softmax)
    return torch::softmax(scores.masked_fill(selected.logical_not().logical_and(any), kNegInf), -1) *
           any.to(scores.dtype());
  // Recency order = descending chunk index: flip, weigh, flip back.
  auto masked = scores.masked_fill(selected.logical_not(), kNegInf).flip({-1});
  return chunk_weights(masked, mode).flip({-1});
}

std::pair<torch::Tensor, torch::Tensor> slot_weights(const torch::Tensor& idx, const torch::Tensor& scores,
                                                     const HsaConfig& c) {
  if (c.fusion == HsaFusion::joint) return {idx, scores};
  if (c.chunk_weights == ChunkWeights::softmax) return {idx, selected_weights(scores)};
  auto order = std::get<1>(idx.sort(-1, /*descending=*/true));  // most recent first, empty (-1) slots last
  auto si = idx.gather(-1, order), ss = scores.gather(-1, order);
  return {si, chunk_weights(ss, c.chunk_weights)};
}

torch::Tensor selection_aux_kl(const torch::Tensor& mass, const torch::Tensor& scores, const torch::Tensor& hidden) {
  auto logt = torch::log_softmax(mass.detach().to(torch::kFloat32).masked_fill(hidden, kNegInf), -1).masked_fill(hidden, 0.0);
  auto logp = torch::log_softmax(scores.to(torch::kFloat32).masked_fill(hidden, kNegInf), -1);
  return (logt.exp() * (logt - logp.masked_fill(hidden, 0.0))).sum(-1);
}

DenseRetrieval dense_retrieval(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& w, int64_t s, HsaFusion fusion, bool softmax1, double scale,
                               const torch::Tensor& aux_scores) {
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), dh = q.size(3);
  const int64_t g = k.size(1), nc = k.size(2), rep = h / g;
  TORCH_CHECK(h % g == 0 && k.size(3) == s, "dense_retrieval: shapes");
  const bool joint = fusion == HsaFusion::joint;
  auto pos = torch::arange(t, torch::TensorOptions().dtype(torch::kInt64).device(q.device()));
  DenseRetrieval res;
  std::vector<torch::Tensor> outs;
  outs.push_back(torch::zeros({b, h, std::min(t, s), dh}, q.options()));  // query chunk 0 sees nothing
  const int64_t nq = (t + s - 1) / s;
  const int64_t budget = int64_t(1) << 23;
  auto qg = rep == 1 ? q : q.reshape({b, g, rep, t, dh});
  for (int64_t c0 = 1; c0 < nq;) {
    int64_t c1 = c0 + 1;  // query chunks [c0, c1) see memory chunks [0, c1-1)
    while (c1 < nq && (c1 + 1 - c0) * s * c1 * s * b * h <= budget) ++c1;
    const int64_t t0 = c0 * s, t1 = std::min(t, c1 * s), n = t1 - t0, mc = std::min(c1 - 1, nc);
    torch::Tensor logits;
    torch::Tensor vb;
    if (rep == 1) {
      auto kb = k.slice(2, 0, mc).reshape({b, h, mc * s, dh});
      vb = v.slice(2, 0, mc).reshape({b, h, mc * s, dh});
      logits = (torch::matmul(q.slice(2, t0, t1), kb.transpose(2, 3)) * scale).view({b, h, n, mc, s});
    } else {  // grouped query heads share one K/V head
      auto kb = k.slice(2, 0, mc).reshape({b, g, 1, mc * s, dh});
      vb = v.slice(2, 0, mc).reshape({b, g, 1, mc * s, dh});
      logits = (torch::matmul(qg.slice(3, t0, t1), kb.transpose(3, 4)) * scale).view({b, h, n, mc, s});
    }
    auto wb = w.slice(1, t0, t1).slice(2, 0, mc).view({b, 1, n, mc, 1});
    if (aux_scores.defined() && mc >= 2) {
      auto cq = pos.slice(0, t0, t1).div(s, "floor").view({1, n, 1});
      auto hide = torch::arange(mc, pos.options()).view({1, 1, mc}).ge(cq);  // chunk not visible to the row
      auto mass = logits.detach().to(torch::kFloat32).logsumexp(-1).mean(1);  // [B, n, mc]
      auto kl = selection_aux_kl(mass, aux_scores.slice(1, t0, t1).slice(2, 0, mc), hide);
      res.aux_sum = res.aux_sum.defined() ? res.aux_sum + kl.sum() : kl.sum();
      for (int64_t c = std::max<int64_t>(c0, 2); c < c1; ++c) res.aux_rows += b * (std::min(t, (c + 1) * s) - c * s);
    }
    torch::Tensor o;
    if (joint) {  // every row here sees >= 1 selected chunk, so no row is all -inf
      auto p = torch::softmax((logits + wb).view({b, h, n, mc * s}), -1);
      o = rep == 1 ? torch::matmul(p, vb) : torch::matmul(p.view({b, g, rep, n, mc * s}), vb).view({b, h, n, dh});
    } else {
      auto p = softmax1 ? torch::exp(logits - torch::nn::functional::softplus(logits.logsumexp(-1, true)))
                        : torch::softmax(logits, -1);
      auto pw = (p * wb).view({b, h, n, mc * s});
      o = rep == 1 ? torch::matmul(pw, vb) : torch::matmul(pw.view({b, g, rep, n, mc * s}), vb).view({b, h, n, dh});
    }
    outs.push_back(o);
    c0 = c1;
  }
  res.out = torch::cat(outs, 2);
  return res;
}

}  // namespace hsa

// ---------------------------------------------------------------------------------------------------------
// Modules

namespace {

// One bidirectional pre-norm layer of the chunk encoder (RoPE at positions 0..L-1 inside the chunk).
struct EncoderLayerImpl : torch::nn::Module {
  RMSNorm attn_norm{nullptr}, mlp_norm{nullptr};
  WindowAttention attn{nullptr};  // its projections and RoPE; the attention itself is unmasked here
  SwiGLU mlp{nullptr};
  EncoderLayerImpl(const HsaConfig& c) {
    attn_norm = register_module("attn_norm", RMSNorm(c.d_model));
    attn = register_module("attn", WindowAttention(c.d_model, c.n_heads, c.chunk + 1, c.rope_base, c.qk_norm));
    mlp_norm = register_module("mlp_norm", RMSNorm(c.d_model));
    mlp = register_module("mlp", SwiGLU(c.d_model, c.mlp_hidden));
  }
  torch::Tensor forward(const torch::Tensor& x, const RopeTables& rt) {
    auto [q, k, v] = attn->project(attn_norm(x), rt);
    auto y = kernels::attention_full(q, k, v, 1.0 / std::sqrt(double(attn->head_dim)));
    auto h = x + attn->merge_heads(y);
    return h + mlp(mlp_norm(h));
  }
};
TORCH_MODULE(EncoderLayer);

// Chunk encoder: [M, S, D] lower-layer states -> tokens [M, S, D] (source of the chunk K/V) and landmarks
// [M, dl].
//   mean-pool:   tokens = norm(x);                    landmark = W mean_j tokens_j  (linear summary)
//   encoder:     tokens = norm(Enc(x));               landmark = W mean_j tokens_j
//   encoder+cls: [tokens; c] = norm(Enc([x; CLS]));   landmark = W c            (CLS at position S)
struct ChunkEncoderImpl : torch::nn::Module {
  ChunkEncoderKind mode;
  int64_t s;
  std::vector<EncoderLayer> layers;
  RMSNorm out_norm{nullptr};
  torch::nn::Linear lmk{nullptr};
  torch::Tensor cls;

  ChunkEncoderImpl(const HsaConfig& c, int64_t dl) : mode(c.chunk_encoder), s(c.chunk) {
    auto list = register_module("layers", torch::nn::ModuleList());
    if (mode != ChunkEncoderKind::mean_pool)
      for (int64_t i = 0; i < c.encoder_layers; ++i) {
        layers.push_back(EncoderLayer(c));
        list->push_back(layers.back());
      }
    out_norm = register_module("out_norm", RMSNorm(c.d_model));
    lmk = register_module("lmk", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, dl).bias(false)));
    if (mode == ChunkEncoderKind::encoder_cls) cls = register_parameter("cls", torch::randn({c.d_model}) * 0.02);
  }

  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x) {
    const int64_t m = x.size(0);
    if (mode == ChunkEncoderKind::mean_pool) {
      auto t = out_norm(x);
      return {t, lmk(t.mean(1))};
    }
    const bool with_cls = mode == ChunkEncoderKind::encoder_cls;
    torch::Tensor h = x;
    if (with_cls) h = torch::cat({x, cls.to(x.dtype()).view({1, 1, -1}).expand({m, 1, x.size(2)})}, 1);
    auto rt = layers.front()->attn->rope.tables(0, h.size(1), h.device());
    for (auto& l : layers) h = l->forward(h, rt);
    h = out_norm(h);
    if (with_cls) return {h.slice(1, 0, s), lmk(h.select(1, s))};
    return {h, lmk(h.mean(1))};
  }
};
TORCH_MODULE(ChunkEncoder);

torch::nn::Linear lin(int64_t i, int64_t o) { return torch::nn::Linear(torch::nn::LinearOptions(i, o).bias(false)); }

// Chunk tokens [M, S, D] -> K, V [M, G, S, dh] through the projections k, v (key_shift: K also gets kp of
// the previous token in the chunk; qk_norm: RMSNorm of each key head).
std::pair<torch::Tensor, torch::Tensor> project_chunk_kv(const torch::Tensor& tok, torch::nn::Linear& k,
                                                         torch::nn::Linear& v, torch::nn::Linear& kp, RMSNorm& k_norm,
                                                         int64_t g, int64_t dh) {
  const int64_t m = tok.size(0), s = tok.size(1);
  auto kin = k(tok);
  if (kp) kin = kin + torch::constant_pad_nd(kp(tok.slice(1, 0, s - 1)), {0, 0, 1, 0});
  auto kk = kin.view({m, s, g, dh}).permute({0, 2, 1, 3});
  if (k_norm) kk = k_norm(kk);
  auto vv = v(tok).view({m, s, g, dh}).permute({0, 2, 1, 3}).contiguous();
  return {kk.contiguous(), vv};
}

// Retrieval half of an lctx-layout upper layer: landmark query, token query, its own chunk K/V projections,
// output.
struct RetrievalImpl : torch::nn::Module {
  int64_t h, g, dh;
  torch::nn::Linear qlmk{nullptr}, q{nullptr}, k{nullptr}, v{nullptr}, wo{nullptr};
  torch::nn::Linear kp{nullptr};  // key_shift only
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // qk_norm only
  RetrievalImpl(const HsaConfig& c, int64_t dl) : h(c.n_heads), g(c.kv_head_count()), dh(c.head_dim()) {
    qlmk = register_module("qlmk", lin(c.d_model, dl));
    q = register_module("q", lin(c.d_model, c.d_model));
    k = register_module("k", lin(c.d_model, g * dh));
    v = register_module("v", lin(c.d_model, g * dh));
    wo = register_module("wo", lin(c.d_model, c.d_model));
    if (c.key_shift) kp = register_module("kp", lin(c.d_model, g * dh));
    if (c.qk_norm) {
      q_norm = register_module("q_norm", RMSNorm(dh));
      k_norm = register_module("k_norm", RMSNorm(dh));
    }
  }
  // Chunk tokens [M, S, D] -> K, V [M, G, S, dh].
  std::pair<torch::Tensor, torch::Tensor> chunk_kv(const torch::Tensor& tok) {
    return project_chunk_kv(tok, k, v, kp, k_norm, g, dh);
  }
};
TORCH_MODULE(Retrieval);

// lctx-layout upper layer: a = x + SWA(attn_norm(x)); r = Retrieval(ret_norm(a));
//   bypass:   out = a + MLP(mlp_norm(a + r))        (retrieval reaches the stream only through the MLP)
//   standard: h1 = a + r; out = h1 + MLP(mlp_norm(h1))
struct UpperLayerImpl : torch::nn::Module {
  RMSNorm attn_norm{nullptr}, ret_norm{nullptr}, mlp_norm{nullptr};
  WindowAttention attn{nullptr};
  Retrieval ret{nullptr};
  SwiGLU mlp{nullptr};
  UpperLayerImpl(const HsaConfig& c, int64_t dl) {
    attn_norm = register_module("attn_norm", RMSNorm(c.d_model));
    attn = register_module("attn", WindowAttention(c.d_model, c.n_heads, c.window, c.rope_base, c.qk_norm));
    ret_norm = register_module("ret_norm", RMSNorm(c.d_model));
    ret = register_module("ret", Retrieval(c, dl));
    mlp_norm = register_module("mlp_norm", RMSNorm(c.d_model));
    mlp = register_module("mlp", SwiGLU(c.d_model, c.mlp_hidden));
  }
  torch::Tensor finish(const torch::Tensor& a, const torch::Tensor& r, bool bypass) {
    if (bypass) return a + mlp(mlp_norm(a + r));
    auto h1 = a + r;
    return h1 + mlp(mlp_norm(h1));
  }
};
TORCH_MODULE(UpperLayer);

// Paper layout: the chunking layer's shared K/V projection (one memory for every HSA layer).
struct ChunkMemoryImpl : torch::nn::Module {
  int64_t g, dh;
  torch::nn::Linear k{nullptr}, v{nullptr}, kp{nullptr};
  RMSNorm k_norm{nullptr};
  ChunkMemoryImpl(const HsaConfig& c) : g(c.kv_head_count()), dh(c.head_dim()) {
    k = register_module("k", lin(c.d_model, g * dh));
    v = register_module("v", lin(c.d_model, g * dh));
    if (c.qk_norm) k_norm = register_module("k_norm", RMSNorm(dh));
  }
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& tok) {
    return project_chunk_kv(tok, k, v, kp, k_norm, g, dh);
  }
};
TORCH_MODULE(ChunkMemory);

// Paper layout: an HSA layer. Optional internal SWA (hsa_swa): a = x + SWA(attn_norm(x)), else a = x. The
// landmark query reads the layer input x (lmk_norm), the token query the post-SWA stream a (ret_norm).
//   bypass:   out = a + MLP(mlp_norm(a + r));   standard: out = (a + r) + MLP(mlp_norm(a + r))
struct HsaLayerImpl : torch::nn::Module {
  int64_t h, dh;
  RMSNorm attn_norm{nullptr}, lmk_norm{nullptr}, ret_norm{nullptr}, mlp_norm{nullptr};
  WindowAttention attn{nullptr};  // hsa_swa only
  torch::nn::Linear qlmk{nullptr}, q{nullptr}, wo{nullptr};
  RMSNorm q_norm{nullptr};  // qk_norm only
  SwiGLU mlp{nullptr};
  HsaLayerImpl(const HsaConfig& c, int64_t dl) : h(c.n_heads), dh(c.head_dim()) {
    if (c.hsa_swa) {
      attn_norm = register_module("attn_norm", RMSNorm(c.d_model));
      attn = register_module("attn", WindowAttention(c.d_model, c.n_heads, c.window, c.rope_base, c.qk_norm));
    }
    lmk_norm = register_module("lmk_norm", RMSNorm(c.d_model));
    qlmk = register_module("qlmk", lin(c.d_model, dl));
    ret_norm = register_module("ret_norm", RMSNorm(c.d_model));
    q = register_module("q", lin(c.d_model, c.d_model));
    if (c.qk_norm) q_norm = register_module("q_norm", RMSNorm(dh));
    wo = register_module("wo", lin(c.d_model, c.d_model));
    mlp_norm = register_module("mlp_norm", RMSNorm(c.d_model));
    mlp = register_module("mlp", SwiGLU(c.d_model, c.mlp_hidden));
  }
  torch::Tensor finish(const torch::Tensor& a, const torch::Tensor& r, bool bypass) {
    auto h1 = a + r;
    return (bypass ? a : h1) + mlp(mlp_norm(h1));
  }
};
TORCH_MODULE(HsaLayer);

// Paper layout: one group = an HSA layer, then group_swa_layers plain SWA blocks.
struct HsaGroupImpl : torch::nn::Module {
  HsaLayer hsa{nullptr};
  std::vector<TransformerBlock> swa;
  HsaGroupImpl(const HsaConfig& c, int64_t dl) {
    hsa = register_module("hsa", HsaLayer(c, dl));
    auto list = register_module("swa", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.group_swa_layers; ++i) {
      swa.push_back(TransformerBlock(c.d_model, c.n_heads, c.window, c.mlp_hidden, c.rope_base, 1e-6, c.qk_norm));
      list->push_back(swa.back());
    }
  }
};
TORCH_MODULE(HsaGroup);

// Capacity of a growing store that must hold `need` rows (at least a quarter more than `cap`, so decoding
// past a reservation re-allocates rarely).
int64_t grown_capacity(int64_t cap, int64_t need) { return std::max(need, cap + cap / 4 + 64); }

// Chunk K/V of one upper layer. On the device: one contiguous [capacity, H, S, dh] tensor for K and one for V
// (a gather is one index_select with device ids); prefill reserves the chunks a call will complete, so a
// prompt pushed in one call allocates once. With kv_offload: pages of kPage chunks in host memory, pinned
// when CUDA is available (pages, because pinned allocations are rounded up to powers of two). Appends into
// pinned pages are asynchronous device-to-host copies on the current stream; a gather copies the chunk ids
// to the host (a blocking copy, which also waits for those appends), collects the rows into pinned staging
// memory and copies them to the device asynchronously.
struct ChunkStore {
  static constexpr int64_t kPage = 4096;
  bool host = false;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat;
  int64_t heads = 0, chunk = 0, head_dim = 0;
  torch::Tensor k, v;                   // device: [capacity, H, S, dh]; rows 0..n-1 valid
  std::vector<torch::Tensor> kp, vp;    // host: pages [kPage, H, S, dh]
  int64_t n = 0;

  bool pinned() const { return host && device.is_cuda(); }
  int64_t capacity() const { return host ? int64_t(kp.size()) * kPage : (k.defined() ? k.size(0) : 0); }
  void reserve(int64_t need) {
    if (host || need <= capacity()) return;
    const int64_t cap = capacity() == 0 ? need : grown_capacity(capacity(), need);
    auto opts = torch::TensorOptions().dtype(dtype).device(device);
    auto nk = torch::empty({cap, heads, chunk, head_dim}, opts), nv = torch::empty({cap, heads, chunk, head_dim}, opts);
    if (n > 0) {
      nk.narrow(0, 0, n).copy_(k.narrow(0, 0, n));
      nv.narrow(0, 0, n).copy_(v.narrow(0, 0, n));
    }
    k = nk;
    v = nv;
  }
  void append(const torch::Tensor& kn_in, const torch::Tensor& vn_in) {  // [m, H, S, dh]
    const int64_t m = kn_in.size(0);
    auto kn = kn_in.to(dtype), vn = vn_in.to(dtype);
    if (!host) {
      reserve(n + m);
      k.narrow(0, n, m).copy_(kn);
      v.narrow(0, n, m).copy_(vn);
      n += m;
      return;
    }
    for (int64_t i = 0; i < m;) {
      const int64_t slot = n % kPage;
      if (slot == 0) {
        auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCPU);
        if (pinned()) opts = opts.pinned_memory(true);
        kp.push_back(torch::empty({kPage, heads, chunk, head_dim}, opts));
        vp.push_back(torch::empty({kPage, heads, chunk, head_dim}, opts));
      }
      const int64_t take = std::min(m - i, kPage - slot);
      kp.back().narrow(0, slot, take).copy_(kn.narrow(0, i, take), /*non_blocking=*/pinned());
      vp.back().narrow(0, slot, take).copy_(vn.narrow(0, i, take), /*non_blocking=*/pinned());
      i += take;
      n += take;
    }
  }
  // Rows `ids` ([U] int64 on `device`, sorted, each in [0, n)) -> [U, H, S, dh] K and V on `device`, storage dtype.
  std::pair<torch::Tensor, torch::Tensor> gather(const torch::Tensor& ids) const {
    if (!host) return {k.index_select(0, ids), v.index_select(0, ids)};
    auto hid = ids.to(torch::kCPU).contiguous();
    const int64_t u = hid.size(0);
    auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCPU);
    if (pinned()) opts = opts.pinned_memory(true);
    auto ko = torch::empty({u, heads, chunk, head_dim}, opts), vo = torch::empty({u, heads, chunk, head_dim}, opts);
    const int64_t* p = hid.data_ptr<int64_t>();
    for (int64_t i = 0; i < u;) {  // runs of ids on the same page
      const int64_t page = p[i] / kPage;
      int64_t j = i;
      while (j < u && p[j] / kPage == page) ++j;
      auto off = hid.narrow(0, i, j - i) - page * kPage;
      auto kd = ko.narrow(0, i, j - i), vd = vo.narrow(0, i, j - i);
      torch::index_select_out(kd, kp[page], 0, off);
      torch::index_select_out(vd, vp[page], 0, off);
      i = j;
    }
    if (!device.is_cpu()) return {ko.to(device, /*non_blocking=*/true), vo.to(device, /*non_blocking=*/true)};
    return {ko, vo};
  }
  // Bytes of the stored chunks (allocated capacity: up to a quarter more on the device, up to one page more
  // in host memory).
  int64_t bytes() const {
    return 2 * n * heads * chunk * head_dim * int64_t(c10::elementSize(dtype));
  }
};

struct HsaState : StreamState {
  StreamOptions opt;
  std::vector<KVCache> lower, upper;
  std::vector<MambaLayerState> lower_mamba;  // lower = "mamba"
  torch::Tensor pending;    // lower-layer states of the incomplete chunk [p, D]
  torch::Tensor landmarks;  // [capacity, dl] on the device (storage dtype); rows 0..n_chunks-1 valid
  torch::Tensor last_emb;   // token_shift: embeddings of the last pushed tokens [1, w, D] (zeros before the first)
  int64_t n_chunks = 0;
  std::vector<ChunkStore> kv;  // per upper layer
  // granularity "chunk": per upper layer, the selection ([K] ids, [K] weights) of the leader of the chunk that
  // holds the last processed position
  std::vector<torch::Tensor> lead_idx, lead_w;
  torch::Tensor lmk_f;  // float32 copy of the valid landmarks for the current piece (bf16 storage), or a view

  void reserve_chunks(int64_t need) {
    if (need > landmarks.size(0)) {
      auto grown = torch::empty({grown_capacity(landmarks.size(0), need), landmarks.size(1)}, landmarks.options());
      if (n_chunks > 0) grown.narrow(0, 0, n_chunks).copy_(landmarks.narrow(0, 0, n_chunks));
      landmarks = grown;
    }
    for (auto& s : kv) s.reserve(need);
  }
};

}  // namespace

struct HsaModel::Impl {
  EmbeddingHead emb{nullptr};
  std::vector<torch::nn::Linear> shift;  // token_shift only: shift[i] projects the token i+1 places back
  // x [B, T, D] -> x + sum_i shift[i](embedding i+1 places back). `all` [B, w + T, D] is the w embeddings
  // before x followed by x itself (the caller keeps its tail as the next block's history).
  torch::Tensor apply_shift(const torch::Tensor& x, const torch::Tensor& all) {
    const int64_t w = static_cast<int64_t>(shift.size()), t = x.size(1);
    auto out = x;
    for (int64_t i = 0; i < w; ++i) out = out + shift[i]->forward(all.narrow(1, w - 1 - i, t));
    return out;
  }
  std::vector<TransformerBlock> lower;
  std::vector<MambaBlock> lower_mamba;  // lower = "mamba" (RAMba)
  ChunkEncoder encoder{nullptr};
  std::vector<UpperLayer> upper;        // layout lctx
  ChunkMemory memory{nullptr};          // layout paper: the shared chunk K/V projection
  std::vector<HsaGroup> groups;         // layout paper
  RMSNorm final_norm{nullptr};
  int64_t dl = 0;
  Rope rope_;
  RopeTables rope(int64_t pos0, int64_t n, const torch::Device& dev) const { return rope_.tables(pos0, n, dev); }
  // Window attentions of the upper stack in stream order (the KV caches of HsaState::upper follow it).
  int64_t upper_windows() const {
    if (!groups.empty()) {
      int64_t n = 0;
      for (auto& g : groups) n += (g->hsa->attn ? 1 : 0) + int64_t(g->swa.size());
      return n;
    }
    return int64_t(upper.size());
  }
};

HsaModel::HsaModel(const HsaConfig& cfg) : cfg_(cfg), impl_(std::make_shared<Impl>()) {
  auto& m = *impl_;
  const bool paper = cfg.layout == HsaLayout::paper;
  m.dl = cfg.landmark_dim > 0 ? cfg.landmark_dim : cfg.d_model;
  m.rope_ = Rope(cfg.head_dim(), cfg.rope_base);
  m.emb = register_module("emb", EmbeddingHead(cfg.vocab, cfg.d_model, cfg.tie_embeddings));
  if (cfg.token_shift)
    for (int64_t i = 0; i < cfg.token_shift_width; ++i)  // "shift" (1 back, as before widths existed), "shift2", ...
      m.shift.push_back(register_module(i == 0 ? std::string("shift") : "shift" + std::to_string(i + 1),
                                        torch::nn::Linear(torch::nn::LinearOptions(cfg.d_model, cfg.d_model).bias(false))));
  auto lower = register_module("lower", torch::nn::ModuleList());
  MambaConfig mc;
  mc.vocab = cfg.vocab;
  mc.d_model = cfg.d_model;
  for (int64_t i = 0; i < cfg.lower_layers; ++i) {
    if (cfg.lower == HsaLower::mamba) {
      m.lower_mamba.push_back(MambaBlock(mc));
      lower->push_back(m.lower_mamba.back());
    } else {
      m.lower.push_back(TransformerBlock(cfg.d_model, cfg.n_heads, cfg.window, cfg.mlp_hidden, cfg.rope_base, 1e-6,
                                         cfg.qk_norm));
      lower->push_back(m.lower.back());
    }
  }
  m.encoder = register_module("encoder", ChunkEncoder(cfg, m.dl));
  int64_t layers = cfg.lower_layers;
  if (paper) {
    m.memory = register_module("memory", ChunkMemory(cfg));
    auto groups = register_module("groups", torch::nn::ModuleList());
    for (int64_t i = 0; i < cfg.upper_groups; ++i) {
      m.groups.push_back(HsaGroup(cfg, m.dl));
      groups->push_back(m.groups.back());
    }
    layers += cfg.upper_groups * (1 + cfg.group_swa_layers);
  } else {
    auto upper = register_module("upper", torch::nn::ModuleList());
    for (int64_t i = 0; i < cfg.upper_layers; ++i) {
      m.upper.push_back(UpperLayer(cfg, m.dl));
      upper->push_back(m.upper.back());
    }
    layers += cfg.upper_layers;
  }
  m.final_norm = register_module("final_norm", RMSNorm(cfg.d_model));
  init_weights(*this, layers, cfg.init == HsaInit::scaled);
  for (auto& b : m.lower_mamba) init_mamba_ssm(*b->mixer, mc);
}

nlohmann::json HsaModel::config() const { return cfg_.to_json(); }

// ---------------------------------------------------------------------------------------------------------
// Full forward

torch::Tensor HsaModel::head(const torch::Tensor& hidden) { return impl_->emb->logits(hidden); }

// Training-time retrieval of one layer over the whole sequence: landmark scores, (noised) top-k selection,
// dense chunk weights, dense chunk attention; selection_aux accumulates into aux. ql [B, T, dl]; q [B, H, T, dh];
// kc, vc [B, G, nc, S, dh]; lmk [B, nc, dl]. Returns [B, T, H * dh].
torch::Tensor HsaModel::train_retrieval(const torch::Tensor& ql, const torch::Tensor& q, const torch::Tensor& kc,
                                        const torch::Tensor& vc, const torch::Tensor& lmk, AuxAccum& aux) {
  const int64_t b = q.size(0), t = q.size(2), s = cfg_.chunk, nc = lmk.size(1);
  const bool train = is_training();
  const bool full = train && full_selection_;  // the trainer's warm-up: every visible chunk, no ranking noise
  const bool enforce = train && !full && cfg_.selection_sparsity == SelectionSparsity::enforced;
  const bool chunk_gran = cfg_.granularity == HsaGranularity::chunk;
  const bool joint = cfg_.fusion == HsaFusion::joint;
  const auto iopt = torch::TensorOptions().dtype(torch::kInt64).device(q.device());
  auto pos = torch::arange(t, iopt);
  const double lscale = 1.0 / std::sqrt(double(impl_->dl)), ascale = 1.0 / std::sqrt(double(cfg_.head_dim()));
  // Landmark scores and selection. Token granularity: one selection per token (visible: its chunk index);
  // chunk granularity: one per query chunk from the chunk's first token.
  torch::Tensor qsel = chunk_gran ? ql.slice(1, 0, t, s) : ql;  // [B, R, dl]
  const int64_t rows = qsel.size(1);
  auto vis = (chunk_gran ? torch::arange(rows, iopt) : pos.div(s, "floor")).clamp_max(nc);
  auto scores = torch::matmul(qsel, lmk.transpose(1, 2)) * lscale;  // [B, R, nc]
  int64_t ksel0 = full ? nc : hsa::selected_count(cfg_, nc, train);
  if (train && !full && selection_fraction_ > 0)
    ksel0 = std::min(nc, std::max(ksel0, static_cast<int64_t>(std::ceil(selection_fraction_ * double(nc)))));
  auto sel = kernels::topk_visible(scores, vis, ksel0,
                                   enforce ? gumbel_like(scores.detach()) : torch::Tensor());
  if (trace_) {
    auto ti = chunk_gran ? sel.idx.repeat_interleave(s, 1).slice(1, 0, t) : sel.idx;
    trace_->idx.push_back(ti.detach().cpu());
    trace_->positions.push_back(pos.cpu());
  }
  // Sparse path: gather only the selected chunks (kernels::chunk_attention_train, CUDA kernels when built).
  // Same maths as the dense path below (unselected chunks weigh 0 there); taken unless selection_aux needs the
  // dense logits of every visible chunk, or most chunks are selected anyway (then dense is cheaper).
  const int64_t ksel = sel.idx.size(-1);
  if (!aux.on && !dense_training_retrieval && 2 * ksel <= nc) {
    auto sc = scores.gather(-1, sel.idx.clamp_min(0)).masked_fill(sel.idx.lt(0), kNegInf);  // [B, R, K], differentiable
    auto [si, sw] = hsa::slot_weights(sel.idx, sc, cfg_);
    if (chunk_gran) {
      si = si.repeat_interleave(s, 1).slice(1, 0, t);
      sw = sw.repeat_interleave(s, 1).slice(1, 0, t);
    }
    auto k5 = kc.permute({0, 2, 1, 3, 4}), v5 = vc.permute({0, 2, 1, 3, 4});  // [B, nc, G, S, dh]
    if (cfg_.chunk_softmax1) {  // a zero key with a zero value = a zero logit in every chunk's softmax
      auto shape = k5.sizes().vec();
      shape[3] = 1;
      auto z = torch::zeros(shape, k5.options());
      k5 = torch::cat({k5, z}, 3);
      v5 = torch::cat({v5, z}, 3);
    }
    auto out = kernels::chunk_attention_train(q, si, sw, k5.contiguous(), v5.contiguous(), ascale, joint);
    return out.permute({0, 2, 1, 3}).reshape({b, t, cfg_.d_model});
  }
  auto mask = torch::zeros({b, rows, nc + 1}, iopt.dtype(torch::kBool));
  mask.scatter_(-1, sel.idx.masked_fill(sel.idx.lt(0), nc), true);
  mask = mask.slice(-1, 0, nc);
  // Dense chunk weights [B, R, nc], exactly 0 for unselected chunks (joint fusion: the selected scores, -inf
  // elsewhere, join the token logits).
  torch::Tensor w = joint ? scores.masked_fill(mask.logical_not(), kNegInf)
                          : hsa::dense_chunk_weights(scores, mask, cfg_.chunk_weights);
  if (chunk_gran) w = w.repeat_interleave(s, 1).slice(1, 0, t);  // [B, T, nc]
  auto r = hsa::dense_retrieval(q, kc, vc, w, s, cfg_.fusion, cfg_.chunk_softmax1, ascale,
                                aux.on ? scores : torch::Tensor());
  if (r.aux_sum.defined()) {
    aux.sum = aux.sum.defined() ? aux.sum + r.aux_sum : r.aux_sum;
    aux.rows += r.aux_rows;
  }
  return r.out.permute({0, 2, 1, 3}).reshape({b, t, cfg_.d_model});
}

torch::Tensor HsaModel::forward_hidden(const torch::Tensor& ids_in) {
  auto& m = *impl_;
  auto ids = check_batch(ids_in, cfg_.vocab, device());
  const int64_t b = ids.size(0), t = ids.size(1), s = cfg_.chunk, d = cfg_.d_model;
  const int64_t h = cfg_.n_heads, dh = cfg_.head_dim(), g = cfg_.kv_head_count();
  auto pos = torch::arange(t, ids.options());
  auto x = m.emb->embed(ids);
  if (cfg_.token_shift) x = m.apply_shift(x, torch::constant_pad_nd(x, {0, 0, cfg_.token_shift_width, 0}));
  auto rt = m.rope(0, t, x.device());
  for (auto& l : m.lower) x = l->forward(x, 0, rt);
  for (auto& l : m.lower_mamba) x = l->forward(x, nullptr);

  const int64_t nc = t / s;  // complete chunks
  torch::Tensor tok, lmk;
  if (nc > 0) {
    auto r = m.encoder->forward(x.slice(1, 0, nc * s).reshape({b * nc, s, d}));
    tok = r.first;                         // [B*nc, S, D]
    lmk = r.second.view({b, nc, m.dl});    // [B, nc, dl]
  }
  AuxAccum aux;
  aux.on = is_training() && cfg_.selection_aux > 0 && cfg_.granularity == HsaGranularity::token;
  aux_ = torch::Tensor();
  const bool bypass = cfg_.residual == HsaResidual::bypass;
  auto no_memory = [&](const torch::Tensor& a) {
    if (trace_) {
      trace_->idx.push_back(torch::full({b, t, 0}, -1, ids.options()));
      trace_->positions.push_back(pos.cpu());
    }
    return torch::zeros_like(a);
  };
  auto heads = [&](const torch::Tensor& y, int64_t n) { return y.view({b, t, n, dh}).permute({0, 2, 1, 3}); };
  auto split = [&](const std::pair<torch::Tensor, torch::Tensor>& kv) {  // [B*nc, G, S, dh] -> [B, G, nc, S, dh]
    return std::make_pair(kv.first.view({b, nc, g, s, dh}).permute({0, 2, 1, 3, 4}),
                          kv.second.view({b, nc, g, s, dh}).permute({0, 2, 1, 3, 4}));
  };

  if (cfg_.layout == HsaLayout::paper) {
    std::pair<torch::Tensor, torch::Tensor> kv;
    if (nc > 0) kv = split(m.memory->forward(tok));  // one shared memory for every HSA layer
    for (auto& grp : m.groups) {
      auto& L = grp->hsa;
      auto a = L->attn ? x + L->attn->forward(L->attn_norm(x), 0, rt) : x;
      torch::Tensor r;
      if (nc == 0) {
        r = no_memory(a);
      } else {
        auto q = heads(L->q(L->ret_norm(a)), h);
        if (L->q_norm) q = L->q_norm(q);
        r = L->wo(train_retrieval(L->qlmk(L->lmk_norm(x)), q, kv.first, kv.second, lmk, aux));
      }
      x = L->finish(a, r, bypass);
      for (auto& blk : grp->swa) x = blk->forward(x, 0, rt);
    }
  } else {
    for (auto& layer : m.upper) {
      auto a = x + layer->attn->forward(layer->attn_norm(x), 0, rt);
      auto hn = layer->ret_norm(a);
      torch::Tensor r;
      if (nc == 0) {
        r = no_memory(a);
      } else {
        auto& ret = layer->ret;
        auto q = heads(ret->q(hn), h);
        if (ret->q_norm) q = ret->q_norm(q);
        auto kv = split(ret->chunk_kv(tok));
        r = ret->wo(train_retrieval(ret->qlmk(hn), q, kv.first, kv.second, lmk, aux));
      }
      x = layer->finish(a, r, bypass);
    }
  }
  if (aux.sum.defined() && aux.rows > 0) aux_ = aux.sum * (cfg_.selection_aux / double(aux.rows));
  return m.final_norm(x);
}

// ---------------------------------------------------------------------------------------------------------
// Streamed inference

std::unique_ptr<StreamState> HsaModel::begin(const StreamOptions& opt) {
  if (opt.precision != "fp32" && opt.precision != "bf16")
    throw Error("hsa: chunk memory precision must be fp32 or bf16, got '" + opt.precision + "'");
  if (opt.block < 0) throw Error("hsa: stream option block must be >= 0");
  auto st = std::make_unique<HsaState>();
  auto& m = *impl_;
  const auto dev = device();
  const auto opts = m.final_norm->weight.options();
  const auto store = opt.precision == "bf16" ? torch::kBFloat16 : opts.dtype().toScalarType();
  const size_t nret = size_t(cfg_.retrieval_layers());
  st->opt = opt;
  st->lower.resize(m.lower.size());
  st->lower_mamba.resize(m.lower_mamba.size());
  st->upper.resize(size_t(m.upper_windows()));
  st->kv.resize(cfg_.layout == HsaLayout::paper ? 1 : nret);
  for (auto& s : st->kv) {
    s.host = opt.kv_offload;
    s.device = dev;
    s.dtype = store;
    s.heads = cfg_.kv_head_count();
    s.chunk = cfg_.chunk;
    s.head_dim = cfg_.head_dim();
  }
  st->pending = torch::empty({0, cfg_.d_model}, opts);
  st->landmarks = torch::empty({0, m.dl}, opts.dtype(store));
  st->lead_idx.resize(nret);
  st->lead_w.resize(nret);
  return st;
}

// The upper stack's modules in stream order with their reach (window - 1 for a window attention, 0 for a
// position-wise module) and pull (the chunk size where a row's selection comes from its chunk's first
// position). lctx layout: every upper layer = window attention, then retrieval + MLP. Paper layout, per
// group: the HSA layer (its own window attention when hsa_swa, then retrieval + MLP), then its SWA blocks.
std::vector<LayerRows> HsaModel::upper_rows(int64_t first, int64_t last) const {
  const auto& m = *impl_;
  const int64_t r = cfg_.window - 1, pull = cfg_.granularity == HsaGranularity::chunk ? cfg_.chunk : 0;
  std::vector<int64_t> reach, pulls;
  if (!m.groups.empty()) {
    for (auto& g : m.groups) {
      reach.push_back(g->hsa->attn ? r : 0);
      pulls.push_back(pull);
      for (size_t i = 0; i < g->swa.size(); ++i) {
        reach.push_back(r);
        pulls.push_back(0);
      }
    }
  } else {
    reach.assign(m.upper.size(), r);
    pulls.assign(m.upper.size(), pull);
  }
  return receptive_rows(first, last, reach, pulls);
}

int64_t HsaModel::upper_modules() const {
  const auto& m = *impl_;
  if (m.groups.empty()) return int64_t(m.upper.size());
  int64_t n = 0;
  for (auto& g : m.groups) n += 1 + int64_t(g->swa.size());
  return n;
}

torch::Tensor HsaModel::prefill(StreamState& base, const torch::Tensor& ids_in) {
  auto* st = dynamic_cast<HsaState*>(&base);
  if (!st || int64_t(st->upper.size()) != impl_->upper_windows() ||
      int64_t(st->lead_idx.size()) != cfg_.retrieval_layers())
    throw Error("hsa prefill: state was not made by this model");
  torch::NoGradGuard ng;
  auto ids = check_block(ids_in, cfg_.vocab, device());
  const int64_t total = ids.size(0), p0 = st->position;
  const int64_t block = st->opt.block > 0 ? st->opt.block : cfg_.prefill_block;
  // One allocation for the chunks this call completes (plus room for a few thousand decoded tokens).
  st->reserve_chunks((p0 + total) / cfg_.chunk + 64);
  std::vector<LayerRows> plan(size_t(upper_modules()), LayerRows{p0, p0});
  if (st->opt.prune) {
    plan = upper_rows(p0, p0 + total - 1);
    st->pruned = true;
  }
  torch::Tensor last;
  for (int64_t i0 = 0; i0 < total; i0 += block) {
    const int64_t i1 = std::min(total, i0 + block);
    last = prefill_piece(*st, ids.slice(0, i0, i1), plan, i1 == total);
  }
  return last;
}

// Streamed retrieval of retrieval layer l for the n rows at positions pos0.. of a block: selection against
// the landmarks, then per retrieval_block rows the distinct selected chunks (found on the device), a gather of
// their K/V from `store` and the chunk attention. ql [n, dl]; q [H, n, dh]; returns [n, H * dh].
torch::Tensor HsaModel::stream_retrieval(StreamState& base, size_t l, const torch::Tensor& ql, const torch::Tensor& q,
                                         const torch::Tensor& pos, int64_t pos0) {
  auto* st = static_cast<HsaState*>(&base);
  auto& store = st->kv[cfg_.layout == HsaLayout::paper ? 0 : l];
  const auto dev = q.device();
  const int64_t n = q.size(1), s = cfg_.chunk, h = cfg_.n_heads, dh = cfg_.head_dim();
  const int64_t g = cfg_.kv_head_count(), rep = h / g, nc = st->n_chunks;
  if (!st->lmk_f.defined() || st->lmk_f.size(0) != nc)  // float32 landmarks for the scores
    st->lmk_f = st->landmarks.narrow(0, 0, nc).to(torch::kFloat);
  const auto& lmk = st->lmk_f;
  const double lscale = 1.0 / std::sqrt(double(impl_->dl)), ascale = 1.0 / std::sqrt(double(dh));
  const bool joint = cfg_.fusion == HsaFusion::joint;
  // Selection per row: idx [n, K], weights [n, K] (chunk fusion) or scores (joint fusion).
  torch::Tensor idx, w;
  {
    profile::Scope ps("selection", dev);
    if (cfg_.granularity == HsaGranularity::token) {
      auto sel = kernels::select_chunks(ql, lmk, pos.div(s, "floor"), cfg_.topk, lscale);
      std::tie(idx, w) = hsa::slot_weights(sel.idx, sel.scores, cfg_);
    } else {
      // Leaders (rows at a chunk's first position) select for their whole chunk; rows before the first leader
      // of this range continue the chunk whose leader the state holds.
      const int64_t kk = std::min(cfg_.topk, nc);
      const int64_t fl = (pos0 + s - 1) / s * s;  // first leader position >= pos0
      auto li = torch::full({1, kk}, -1, pos.options());
      auto lw = torch::full({1, kk}, joint ? kNegInf : 0.0, ql.options());
      if (st->lead_idx[l].defined()) {  // the held leader's selection, padded to the current K
        const int64_t have = st->lead_idx[l].size(0);
        li.narrow(1, 0, have).copy_(st->lead_idx[l]);
        lw.narrow(1, 0, have).copy_(st->lead_w[l]);
      }
      if (fl < pos0 + n) {
        auto lr = torch::arange(fl - pos0, n, s, pos.options());
        auto sel = kernels::select_chunks(ql.index_select(0, lr), lmk, pos.index_select(0, lr).div(s, "floor"),
                                          cfg_.topk, lscale);
        auto sw = hsa::slot_weights(sel.idx, sel.scores, cfg_);
        li = torch::cat({li, sw.first}, 0);
        lw = torch::cat({lw, sw.second.to(lw.scalar_type())}, 0);
      }
      auto entry = (pos - fl + s).div(s, "floor");  // 0: the held leader; j >= 1: the j-th leader here
      idx = li.index_select(0, entry);
      w = lw.index_select(0, entry);
      st->lead_idx[l] = li[li.size(0) - 1].clone();
      st->lead_w[l] = lw[lw.size(0) - 1].clone();
    }
  }
  if (trace_) {
    trace_->idx.push_back(idx.cpu());
    trace_->positions.push_back(pos.cpu());
  }
  std::vector<torch::Tensor> outs;
  for (int64_t r0 = 0; r0 < n; r0 += retrieval_block) {
    const int64_t r1 = std::min(n, r0 + retrieval_block), nr = r1 - r0;
    if (nc == 0 || idx.size(1) == 0) {
      outs.push_back(torch::zeros({h, nr, dh}, q.options()));
      continue;
    }
    auto bi = idx.slice(0, r0, r1);
    auto bw = w.slice(0, r0, r1);
    // The distinct chunks of the block, on the device: sorted ids (-1, the empty slot, gathers chunk 0 as a
    // placeholder nothing attends to) and each slot's row among them.
    torch::Tensor local;
    std::pair<torch::Tensor, torch::Tensor> kv;
    {
      profile::Scope ps("gather", dev);
      auto uq = torch::_unique2(bi.reshape({-1}), /*sorted=*/true, /*return_inverse=*/true);
      local = std::get<1>(uq).view(bi.sizes()).masked_fill(bi.lt(0), -1);
      kv = store.gather(std::get<0>(uq).clamp_min(0));  // [U, G, S, dh]
    }
    profile::Scope ps("attention", dev);
    if (cfg_.chunk_softmax1) {  // a zero key with a zero value = a zero logit in every chunk's softmax
      auto z = torch::zeros({kv.first.size(0), g, 1, dh}, kv.first.options());
      kv = {torch::cat({kv.first, z}, 2), torch::cat({kv.second, z}, 2)};
    }
    // Grouped query heads: the rep query heads of a K/V head become rep x nr rows of that head.
    auto qb = q.slice(1, r0, r1).reshape({g, rep * nr, dh});
    auto li = rep == 1 ? local : local.repeat({rep, 1});
    auto lw = rep == 1 ? bw : bw.repeat({rep, 1});
    auto o = joint ? kernels::chunk_attention_joint(qb, li, lw, kv.first, kv.second, ascale)
                   : kernels::chunk_attention(qb, li, lw, kv.first, kv.second, ascale);
    outs.push_back(o.reshape({h, nr, dh}));
  }
  return torch::cat(outs, 1).permute({1, 0, 2}).reshape({n, h * dh});
}

// One piece [p0, e) of a prefill call: embeddings, lower layers and the chunk encoder on every position; upper
// module j on its input rows [max(p0, plan[j].in0), e) and output rows [max(p0, plan[j].out0), e) only.
torch::Tensor HsaModel::prefill_piece(StreamState& base, const torch::Tensor& ids, const std::vector<LayerRows>& plan,
                                      bool want_logits) {
  auto* st = static_cast<HsaState*>(&base);
  auto& m = *impl_;
  const auto dev = ids.device();
  const int64_t n = ids.size(0), s = cfg_.chunk, d = cfg_.d_model, h = cfg_.n_heads, dh = cfg_.head_dim();
  const int64_t p0 = st->position, e = p0 + n;
  const bool paper = cfg_.layout == HsaLayout::paper;
  torch::Tensor x;
  {
    profile::Scope ps("embed", dev);
    x = m.emb->embed(ids).unsqueeze(0);  // [1, n, D]
    if (cfg_.token_shift) {
      const int64_t w = cfg_.token_shift_width;
      auto hist = st->last_emb.defined() ? st->last_emb : torch::zeros({1, w, d}, x.options());
      auto all = torch::cat({hist, x}, 1);
      st->last_emb = all.narrow(1, n, w).clone();  // the last w embeddings after this block
      x = m.apply_shift(x, all);
    }
  }
  auto rt = m.rope(p0, n, dev);
  {
    profile::Scope ps("lower", dev);
    for (size_t i = 0; i < m.lower.size(); ++i) x = m.lower[i]->forward_stream(x, p0, rt, st->lower[i]);
    for (size_t i = 0; i < m.lower_mamba.size(); ++i) x = m.lower_mamba[i]->forward(x, &st->lower_mamba[i]);
  }

  // Encode the chunks completed by this block (each chunk exactly once).
  st->pending = torch::cat({st->pending, x[0]}, 0);
  const int64_t done = st->pending.size(0) / s;
  if (done > 0) {
    std::pair<torch::Tensor, torch::Tensor> r;
    {
      profile::Scope ps("encoder", dev);
      r = m.encoder->forward(st->pending.slice(0, 0, done * s).reshape({done, s, d}));
    }
    profile::Scope ps("kv_store", dev);
    st->reserve_chunks(st->n_chunks + done);
    st->landmarks.narrow(0, st->n_chunks, done).copy_(r.second);
    if (paper) {
      auto kv = m.memory->forward(r.first);
      st->kv[0].append(kv.first, kv.second);
    }
    for (size_t l = 0; l < m.upper.size(); ++l) {
      auto kv = m.upper[l]->ret->chunk_kv(r.first);
      st->kv[l].append(kv.first, kv.second);
    }
    st->n_chunks += done;
    st->pending = st->pending.slice(0, done * s).clone();
  }
  st->lmk_f = torch::Tensor();  // the memory may have grown

  // The upper stack, module by module (stream order); x holds rows [from, e).
  const bool bypass = cfg_.residual == HsaResidual::bypass;
  int64_t from = p0;
  size_t mod = 0;    // index into plan
  size_t cache = 0;  // st->upper: window caches in stream order
  bool complete = true;
  int64_t in0 = 0, out0 = 0, nq = 0;
  // Enters module `mod`: false when it starts in a later piece (then so do the modules above it).
  auto enter = [&]() {
    in0 = std::max(p0, plan[mod].in0);
    out0 = std::min(e, std::max(p0, plan[mod].out0));
    if (in0 >= e) return false;
    if (in0 > from) x = x.narrow(1, in0 - from, e - in0);
    from = in0;
    nq = e - out0;
    return true;
  };
  // Window attention of the module on rows [in0, e), queries [out0, e): [1, nq, D].
  auto window = [&](WindowAttention& attn, RMSNorm& norm) {
    profile::Scope ps("upper_swa", dev);
    return attn->forward_stream(norm(x), in0, Rope::slice(rt, in0 - p0, e - in0), st->upper[cache++], nq);
  };
  auto leave = [&]() {  // after the module: x holds its nq output rows
    from = out0;
    st->prunable_rows += nq;
    ++mod;
    return nq > 0;  // no output rows here: the modules above start in a later piece
  };
  auto heads = [&](const torch::Tensor& y) { return y.view({nq, h, dh}).permute({1, 0, 2}); };  // [H, nq, dh]
  auto rows = [&]() { return torch::arange(out0, e, ids.options()); };
  if (paper) {
    for (size_t l = 0; l < m.groups.size() && complete; ++l) {
      auto& L = m.groups[l]->hsa;
      if (!(complete = enter())) break;
      auto xo = x.narrow(1, out0 - in0, nq);  // the HSA layer's input on its output rows
      auto a = L->attn ? xo + window(L->attn, L->attn_norm) : xo;
      if (nq > 0) {
        auto q = heads(L->q(L->ret_norm(a)[0]));
        if (L->q_norm) q = L->q_norm(q);
        auto o = stream_retrieval(*st, l, L->qlmk(L->lmk_norm(xo)[0]), q, rows(), out0);
        profile::Scope ps("mlp", dev);
        x = L->finish(a, L->wo(o).unsqueeze(0), bypass);
      } else {
        x = a;
      }
      if (!(complete = leave())) break;
      for (auto& blk : m.groups[l]->swa) {
        if (!(complete = enter())) break;
        {
          profile::Scope ps("upper_swa", dev);
          x = blk->forward_stream(x, in0, Rope::slice(rt, in0 - p0, e - in0), st->upper[cache++], nq);
        }
        if (!(complete = leave())) break;
      }
    }
  } else {
    for (size_t l = 0; l < m.upper.size(); ++l) {
      auto& layer = m.upper[l];
      if (!(complete = enter())) break;
      auto a = x.narrow(1, out0 - in0, nq) + window(layer->attn, layer->attn_norm);
      if (nq > 0) {
        auto hn = layer->ret_norm(a)[0];  // [nq, D]
        auto& ret = layer->ret;
        auto q = heads(ret->q(hn));
        if (ret->q_norm) q = ret->q_norm(q);
        auto o = stream_retrieval(*st, l, ret->qlmk(hn), q, rows(), out0);
        profile::Scope ps("mlp", dev);
        x = layer->finish(a, ret->wo(o).unsqueeze(0), bypass);
      } else {
        x = a;
      }
      if (!(complete = leave())) break;
    }
  }
  st->position += n;
  if (!want_logits) return {};
  if (!complete) throw Error("hsa prefill: internal error: the last piece skipped an upper module");
  profile::Scope ps("head", dev);
  return m.emb->logits(m.final_norm(x.select(1, x.size(1) - 1))).reshape({-1});
}

HsaMemoryStats HsaModel::memory_stats(const StreamState& base) const {
  auto* st = dynamic_cast<const HsaState*>(&base);
  if (!st) throw Error("hsa: memory_stats got a stream state from another model");
  HsaMemoryStats ms;
  ms.chunks = st->n_chunks;
  ms.landmark_bytes = st->landmarks.numel() * st->landmarks.element_size();
  for (auto& s : st->kv) (s.host ? ms.kv_host_bytes : ms.kv_device_bytes) += s.bytes();
  ms.local_bytes = st->pending.numel() * st->pending.element_size();
  for (auto* v : {&st->lower, &st->upper})
    for (auto& c : *v) ms.local_bytes += c.bytes();
  for (auto& l : st->lower_mamba) ms.local_bytes += mamba_state_bytes(l);
  return ms;
}

}  // namespace lctx::models
