// HSA model: lower sliding-window layers -> chunk encoder (landmark + chunk K/V) -> upper layers with
// sliding-window self-attention + token-level top-k chunk retrieval + MLP. Full forward (training, tests)
// and streamed inference with a chunk memory (landmarks on the device, chunk K/V on the device or in host
// memory). See docs/hsa.md for the equations and the switches.
#include "models/hsa.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "kernels/chunk_attention.hpp"
#include "models/layers.hpp"
#include "models/mamba.hpp"
#include "tasks/core.hpp"

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
// Config

HsaConfig HsaConfig::preset(const std::string& name) {
  HsaConfig c;
  if (name == "tiny") {
    c.d_model = 128; c.n_heads = 4; c.lower_layers = 2; c.upper_layers = 2; c.window = 128; c.chunk = 64;
    c.topk = 8; c.encoder_layers = 2;
  } else if (name == "small") {
    c.d_model = 384; c.n_heads = 6; c.lower_layers = 4; c.upper_layers = 4; c.window = 256; c.chunk = 64;
    c.topk = 8; c.encoder_layers = 2;
  } else {
    throw Error("hsa config: unknown preset '" + name + "' (tiny, small)");
  }
  return c;
}

HsaConfig HsaConfig::from_json(const nlohmann::json& j) {
  ConfigReader r(j, "hsa config");
  if (r.get_string("kind", "hsa") != "hsa") r.fail("kind must be \"hsa\"");
  HsaConfig d = r.has("preset") ? preset(r.get_string("preset", "", {"tiny", "small"})) : HsaConfig();
  HsaConfig c;
  c.vocab = r.get_int("vocab", d.vocab, 2);
  c.d_model = r.get_int("d_model", d.d_model);
  c.n_heads = r.get_int("n_heads", d.n_heads);
  c.mlp_hidden = r.get_int("mlp_hidden", d.mlp_hidden, 0);
  c.lower_layers = r.get_int("lower_layers", d.lower_layers, 0);
  c.upper_layers = r.get_int("upper_layers", d.upper_layers);
  c.window = r.get_int("window", d.window);
  c.chunk = r.get_int("chunk", d.chunk, 2);
  c.topk = r.get_int("topk", d.topk);
  c.landmark_dim = r.get_int("landmark_dim", d.landmark_dim, 0);
  c.encoder_layers = r.get_int("encoder_layers", d.encoder_layers, 0);
  c.chunk_encoder = r.get_string("chunk_encoder", d.chunk_encoder, {"mean-pool", "encoder", "encoder+cls"});
  c.residual = r.get_string("residual", d.residual, {"bypass", "standard"});
  c.selection_sparsity = r.get_string("selection_sparsity", d.selection_sparsity, {"enforced", "off"});
  c.sparsity_ratio = r.get_int("sparsity_ratio", d.sparsity_ratio);
  c.granularity = r.get_string("granularity", d.granularity, {"token", "chunk"});
  c.fusion = r.get_string("fusion", d.fusion, {"chunk", "joint"});
  c.token_shift = r.get_bool("token_shift", d.token_shift);
  c.token_shift_width = r.get_int("token_shift_width", d.token_shift_width, 1);
  if (c.token_shift_width > 8) throw Error("hsa config: token_shift_width must be in [1, 8]");
  c.key_shift = r.get_bool("key_shift", d.key_shift);
  c.selection_aux = r.get_double("selection_aux", d.selection_aux, 0.0);
  c.lower = r.get_string("lower", d.lower, {"swa", "mamba"});
  c.rope_base = r.get_double("rope_base", d.rope_base, 1.0);
  c.tie_embeddings = r.get_bool("tie_embeddings", d.tie_embeddings);
  c.prefill_block = r.get_int("prefill_block", d.prefill_block);
  r.finish();
  if (c.d_model % c.n_heads) r.fail("d_model must be a multiple of n_heads");
  if ((c.d_model / c.n_heads) % 2) r.fail("head dim (d_model / n_heads) must be even for RoPE");
  if (c.chunk_encoder != "mean-pool" && c.encoder_layers < 1)
    r.fail("chunk_encoder '" + c.chunk_encoder + "' needs encoder_layers >= 1");
  if (c.selection_aux > 0 && c.granularity != "token") r.fail("selection_aux needs granularity \"token\"");
  return c;
}

nlohmann::json HsaConfig::to_json() const {
  return {{"kind", "hsa"},
          {"vocab", vocab},
          {"d_model", d_model},
          {"n_heads", n_heads},
          {"mlp_hidden", mlp_hidden},
          {"lower_layers", lower_layers},
          {"upper_layers", upper_layers},
          {"window", window},
          {"chunk", chunk},
          {"topk", topk},
          {"landmark_dim", landmark_dim},
          {"encoder_layers", encoder_layers},
          {"chunk_encoder", chunk_encoder},
          {"residual", residual},
          {"selection_sparsity", selection_sparsity},
          {"sparsity_ratio", sparsity_ratio},
          {"granularity", granularity},
          {"fusion", fusion},
          {"token_shift", token_shift},
          {"token_shift_width", token_shift_width},
          {"key_shift", key_shift},
          {"selection_aux", selection_aux},
          {"lower", lower},
          {"rope_base", rope_base},
          {"tie_embeddings", tie_embeddings},
          {"prefill_block", prefill_block}};
}

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
    attn = register_module("attn", WindowAttention(c.d_model, c.n_heads, c.chunk + 1, c.rope_base));
    mlp_norm = register_module("mlp_norm", RMSNorm(c.d_model));
    mlp = register_module("mlp", SwiGLU(c.d_model, c.mlp_hidden));
  }
  torch::Tensor forward(const torch::Tensor& x, const RopeTables& rt) {
    auto [q, k, v] = attn->project(attn_norm(x), rt);
    auto logits = torch::matmul(q, k.transpose(2, 3)).to(torch::kFloat) * (1.0 / std::sqrt(double(attn->head_dim)));
    auto y = torch::matmul(torch::softmax(logits, -1).to(v.scalar_type()), v);
    auto h = x + attn->merge_heads(y);
    return h + mlp(mlp_norm(h));
  }
};
TORCH_MODULE(EncoderLayer);

// Chunk encoder: [M, S, D] lower-layer states -> tokens [M, S, D] (source of every upper layer's chunk K/V)
// and landmarks [M, dl].
//   mean-pool:   tokens = norm(x);                    landmark = W mean_j tokens_j  (linear summary)
//   encoder:     tokens = norm(Enc(x));               landmark = W mean_j tokens_j
//   encoder+cls: [tokens; c] = norm(Enc([x; CLS]));   landmark = W c            (CLS at position S)
struct ChunkEncoderImpl : torch::nn::Module {
  std::string mode;
  int64_t s;
  std::vector<EncoderLayer> layers;
  RMSNorm out_norm{nullptr};
  torch::nn::Linear lmk{nullptr};
  torch::Tensor cls;

  ChunkEncoderImpl(const HsaConfig& c, int64_t dl) : mode(c.chunk_encoder), s(c.chunk) {
    auto list = register_module("layers", torch::nn::ModuleList());
    if (mode != "mean-pool")
      for (int64_t i = 0; i < c.encoder_layers; ++i) {
        layers.push_back(EncoderLayer(c));
        list->push_back(layers.back());
      }
    out_norm = register_module("out_norm", RMSNorm(c.d_model));
    lmk = register_module("lmk", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, dl).bias(false)));
    if (mode == "encoder+cls") cls = register_parameter("cls", torch::randn({c.d_model}) * 0.02);
  }

  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x) {
    const int64_t m = x.size(0);
    if (mode == "mean-pool") {
      auto t = out_norm(x);
      return {t, lmk(t.mean(1))};
    }
    torch::Tensor h = x;
    if (mode == "encoder+cls") h = torch::cat({x, cls.to(x.dtype()).view({1, 1, -1}).expand({m, 1, x.size(2)})}, 1);
    auto rt = layers.front()->attn->rope.tables(0, h.size(1), h.device());
    for (auto& l : layers) h = l->forward(h, rt);
    h = out_norm(h);
    if (mode == "encoder+cls") return {h.slice(1, 0, s), lmk(h.select(1, s))};
    return {h, lmk(h.mean(1))};
  }
};
TORCH_MODULE(ChunkEncoder);

// Retrieval half of an upper layer: landmark query, token query, chunk K/V projections, output.
struct RetrievalImpl : torch::nn::Module {
  int64_t h, dh;
  torch::nn::Linear qlmk{nullptr}, q{nullptr}, k{nullptr}, v{nullptr}, wo{nullptr};
  torch::nn::Linear kp{nullptr};  // key_shift only
  RetrievalImpl(const HsaConfig& c, int64_t dl) : h(c.n_heads), dh(c.d_model / c.n_heads) {
    auto lin = [](int64_t i, int64_t o) { return torch::nn::Linear(torch::nn::LinearOptions(i, o).bias(false)); };
    qlmk = register_module("qlmk", lin(c.d_model, dl));
    q = register_module("q", lin(c.d_model, c.d_model));
    k = register_module("k", lin(c.d_model, c.d_model));
    v = register_module("v", lin(c.d_model, c.d_model));
    wo = register_module("wo", lin(c.d_model, c.d_model));
    if (c.key_shift) kp = register_module("kp", lin(c.d_model, c.d_model));
  }
  // Chunk tokens [M, S, D] -> K, V [M, H, S, dh]. key_shift: K also gets W_kp of the previous token in the chunk.
  std::pair<torch::Tensor, torch::Tensor> chunk_kv(const torch::Tensor& tok) {
    const int64_t m = tok.size(0), s = tok.size(1);
    auto kin = k(tok);
    if (kp) kin = kin + torch::constant_pad_nd(kp(tok.slice(1, 0, s - 1)), {0, 0, 1, 0});
    auto kk = kin.view({m, s, h, dh}).permute({0, 2, 1, 3}).contiguous();
    auto vv = v(tok).view({m, s, h, dh}).permute({0, 2, 1, 3}).contiguous();
    return {kk, vv};
  }
};
TORCH_MODULE(Retrieval);

// Upper layer: a = x + SWA(attn_norm(x)); r = Retrieval(ret_norm(a));
//   bypass:   out = a + MLP(mlp_norm(a + r))        (retrieval reaches the stream only through the MLP)
//   standard: h1 = a + r; out = h1 + MLP(mlp_norm(h1))
struct UpperLayerImpl : torch::nn::Module {
  RMSNorm attn_norm{nullptr}, ret_norm{nullptr}, mlp_norm{nullptr};
  WindowAttention attn{nullptr};
  Retrieval ret{nullptr};
  SwiGLU mlp{nullptr};
  UpperLayerImpl(const HsaConfig& c, int64_t dl) {
    attn_norm = register_module("attn_norm", RMSNorm(c.d_model));
    attn = register_module("attn", WindowAttention(c.d_model, c.n_heads, c.window, c.rope_base));
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

// Paged chunk K/V store (pages of kPage chunks; no reallocation as it grows). Host pages are pinned when
// CUDA is available.
struct ChunkStore {
  static constexpr int64_t kPage = 256;
  bool host = false;
  torch::Device device{torch::kCPU};
  std::vector<torch::Tensor> kp, vp;
  int64_t n = 0;

  void append(const torch::Tensor& k, const torch::Tensor& v) {  // [m, H, S, dh]
    const int64_t m = k.size(0);
    for (int64_t i = 0; i < m;) {
      const int64_t slot = n % kPage;
      if (slot == 0) {
        auto opts = k.options().device(host ? torch::Device(torch::kCPU) : device);
        if (host && torch::cuda::is_available()) opts = opts.pinned_memory(true);
        std::vector<int64_t> shape = {kPage, k.size(1), k.size(2), k.size(3)};
        kp.push_back(torch::empty(shape, opts));
        vp.push_back(torch::empty(shape, opts));
      }
      const int64_t take = std::min(m - i, kPage - slot);
      kp.back().slice(0, slot, slot + take).copy_(k.slice(0, i, i + take));
      vp.back().slice(0, slot, slot + take).copy_(v.slice(0, i, i + take));
      i += take;
      n += take;
    }
  }
  // Rows `ids` (sorted unique, int64 on CPU) -> [U, H, S, dh] K and V on `device`.
  std::pair<torch::Tensor, torch::Tensor> gather(const std::vector<int64_t>& ids) const {
    const auto& ref = kp.front();
    std::vector<int64_t> shape = {int64_t(ids.size()), ref.size(1), ref.size(2), ref.size(3)};
    auto opts = ref.options();
    if (host && torch::cuda::is_available()) opts = opts.pinned_memory(true);
    auto ko = torch::empty(shape, opts), vo = torch::empty(shape, opts);
    size_t i = 0;
    while (i < ids.size()) {  // ids sorted: runs of the same page
      const int64_t page = ids[i] / kPage;
      size_t j = i;
      std::vector<int64_t> offs;
      while (j < ids.size() && ids[j] / kPage == page) offs.push_back(ids[j++] % kPage);
      auto o = torch::tensor(offs, torch::kInt64).to(ref.device());
      ko.slice(0, i, j).copy_(kp[page].index_select(0, o));
      vo.slice(0, i, j).copy_(vp[page].index_select(0, o));
      i = j;
    }
    if (host) return {ko.to(device, /*non_blocking=*/true), vo.to(device, /*non_blocking=*/true)};
    return {ko, vo};
  }
  int64_t bytes() const {
    int64_t b = 0;
    for (auto& t : kp) b += t.numel() * t.element_size();
    for (auto& t : vp) b += t.numel() * t.element_size();
    return b;
  }
};

struct HsaState : StreamState {
  StreamOptions opt;
  std::vector<KVCache> lower, upper;
  std::vector<MambaLayerState> lower_mamba;  // lower = "mamba"
  torch::Tensor pending;    // lower-layer states of the incomplete chunk [p, D]
  torch::Tensor landmarks;  // [capacity, dl] on the device; rows 0..n_chunks-1 valid
  torch::Tensor last_emb;   // token_shift: embeddings of the last pushed tokens [1, w, D] (zeros before the first)
  int64_t n_chunks = 0;
  std::vector<ChunkStore> kv;  // per upper layer
  // granularity "chunk": the current query chunk's selection per upper layer ([K] ids, [K] weights)
  std::vector<int64_t> lead_chunk;
  std::vector<torch::Tensor> lead_idx, lead_w;
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
  std::vector<UpperLayer> upper;
  RMSNorm final_norm{nullptr};
  int64_t dl = 0;
  RopeTables rope(int64_t pos0, int64_t n, const torch::Device& dev) const {
    return upper.front()->attn->rope.tables(pos0, n, dev);
  }
};

HsaModel::HsaModel(const HsaConfig& cfg) : cfg_(cfg), impl_(std::make_shared<Impl>()) {
  auto& m = *impl_;
  m.dl = cfg.landmark_dim > 0 ? cfg.landmark_dim : cfg.d_model;
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
    if (cfg.lower == "mamba") {
      m.lower_mamba.push_back(MambaBlock(mc));
      lower->push_back(m.lower_mamba.back());
    } else {
      m.lower.push_back(TransformerBlock(cfg.d_model, cfg.n_heads, cfg.window, cfg.mlp_hidden, cfg.rope_base));
      lower->push_back(m.lower.back());
    }
  }
  m.encoder = register_module("encoder", ChunkEncoder(cfg, m.dl));
  auto upper = register_module("upper", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.upper_layers; ++i) {
    m.upper.push_back(UpperLayer(cfg, m.dl));
    upper->push_back(m.upper.back());
  }
  m.final_norm = register_module("final_norm", RMSNorm(cfg.d_model));
  init_weights(*this, cfg.lower_layers + cfg.upper_layers);
  for (auto& b : m.lower_mamba) init_mamba_ssm(*b->mixer, mc);
}

nlohmann::json HsaModel::config() const { return cfg_.to_json(); }

// ---------------------------------------------------------------------------------------------------------
// Full forward

torch::Tensor HsaModel::head(const torch::Tensor& hidden) { return impl_->emb->logits(hidden); }

torch::Tensor HsaModel::forward_hidden(const torch::Tensor& ids_in) {
  auto& m = *impl_;
  auto ids = check_batch(ids_in, cfg_.vocab, device());
  const int64_t b = ids.size(0), t = ids.size(1), s = cfg_.chunk, d = cfg_.d_model;
  const int64_t h = cfg_.n_heads, dh = d / h;
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
  const bool train = is_training();
  const bool enforce = train && cfg_.selection_sparsity == "enforced";
  const int64_t k_eff = enforce ? std::min(cfg_.topk, std::max<int64_t>(2, nc / cfg_.sparsity_ratio)) : cfg_.topk;
  const double lscale = 1.0 / std::sqrt(double(m.dl)), ascale = 1.0 / std::sqrt(double(dh));
  const bool chunk_gran = cfg_.granularity == "chunk";
  const bool joint = cfg_.fusion == "joint";
  const bool aux = train && cfg_.selection_aux > 0 && !chunk_gran;
  aux_ = torch::Tensor();
  torch::Tensor aux_sum;
  int64_t aux_rows = 0;

  for (auto& layer : m.upper) {
    auto a = x + layer->attn->forward(layer->attn_norm(x), 0, rt);
    auto hn = layer->ret_norm(a);
    torch::Tensor r;
    if (nc == 0) {
      r = torch::zeros_like(a);
      if (trace_) {
        trace_->idx.push_back(torch::full({b, t, 0}, -1, ids.options()));
        trace_->positions.push_back(pos.cpu());
      }
    } else {
      auto& ret = layer->ret;
      // Landmark scores and selection. Token granularity: one selection per token (visible: its chunk index);
      // chunk granularity: one per query chunk from the chunk's first token.
      auto ql = ret->qlmk(hn);                                        // [B, T, dl]
      torch::Tensor qsel = chunk_gran ? ql.slice(1, 0, t, s) : ql;    // [B, R, dl]
      const int64_t rows = qsel.size(1);
      auto vis = chunk_gran ? torch::arange(rows, ids.options()) : pos.div(s, "floor");
      vis = vis.clamp_max(nc);
      auto scores = torch::matmul(qsel, lmk.transpose(1, 2)) * lscale;  // [B, R, nc]
      auto sel = kernels::topk_visible(scores, vis, k_eff, enforce ? gumbel_like(scores.detach()) : torch::Tensor());
      // Dense chunk weights [B, R, nc]: softmax over the selected scores, zero elsewhere (exactly the
      // gathered form's weights, with gradients into the landmarks and the landmark query).
      auto kk = sel.idx.size(-1);
      auto mask = torch::zeros({b, rows, nc + 1}, ids.options().dtype(torch::kBool));
      auto slot = sel.idx.masked_fill(sel.idx.lt(0), nc);
      mask.scatter_(-1, slot, true);
      mask = mask.slice(-1, 0, nc);
      auto any = mask.any(-1, true);
      // joint fusion: the selected scores themselves (-inf elsewhere) join the token logits.
      torch::Tensor w = joint ? scores.masked_fill(mask.logical_not(), kNegInf)
                              : torch::softmax(scores.masked_fill(mask.logical_not().logical_and(any), kNegInf), -1) *
                                    any.to(scores.dtype());
      if (chunk_gran) w = w.repeat_interleave(s, 1).slice(1, 0, t);  // [B, T, nc]
      if (trace_) {
        auto ti = chunk_gran ? sel.idx.repeat_interleave(s, 1).slice(1, 0, t) : sel.idx;
        trace_->idx.push_back(ti.detach().cpu());
        trace_->positions.push_back(pos.cpu());
      }
      (void)kk;
      // Token attention inside every visible chunk (dense over chunks, per-chunk softmax), weighted by w.
      auto q = ret->q(hn).view({b, t, h, dh}).permute({0, 2, 1, 3});     // [B, H, T, dh]
      auto kv = ret->chunk_kv(tok);                                         // [B*nc, H, S, dh]
      auto kc = kv.first.view({b, nc, h, s, dh}).permute({0, 2, 1, 3, 4});  // [B, H, nc, S, dh]
      auto vc = kv.second.view({b, nc, h, s, dh}).permute({0, 2, 1, 3, 4});
      std::vector<torch::Tensor> outs;
      outs.push_back(torch::zeros({b, h, std::min(t, s), dh}, q.options()));  // query chunk 0 sees nothing
      const int64_t nq = (t + s - 1) / s;
      const int64_t budget = int64_t(1) << 23;
      for (int64_t c0 = 1; c0 < nq;) {
        int64_t c1 = c0 + 1;  // query chunks [c0, c1) see memory chunks [0, c1-1)
        while (c1 < nq && (c1 + 1 - c0) * s * c1 * s * b * h <= budget) ++c1;
        const int64_t t0 = c0 * s, t1 = std::min(t, c1 * s), n = t1 - t0, mc = c1 - 1;
        auto qb = q.slice(2, t0, t1);                                       // [B, H, n, dh]
        auto kb = kc.slice(2, 0, mc).reshape({b, h, mc * s, dh});
        auto vb = vc.slice(2, 0, mc).reshape({b, h, mc * s, dh});
        auto logits = (torch::matmul(qb, kb.transpose(2, 3)) * ascale).view({b, h, n, mc, s});
        auto wb = w.slice(1, t0, t1).slice(2, 0, mc).view({b, 1, n, mc, 1});
        if (aux && mc >= 2) {  // selection_aux: KL(token-attention mass per chunk || landmark softmax)
          auto cq = pos.slice(0, t0, t1).div(s, "floor").view({1, n, 1});
          auto hide = torch::arange(mc, ids.options()).view({1, 1, mc}).ge(cq);  // chunk not visible to row
          auto rel = logits.detach().to(torch::kFloat32).logsumexp(-1).mean(1);  // [B, n, mc]
          auto logt = torch::log_softmax(rel.masked_fill(hide, kNegInf), -1).masked_fill(hide, 0.0);
          auto logp = torch::log_softmax(
              scores.slice(1, t0, t1).slice(2, 0, mc).to(torch::kFloat32).masked_fill(hide, kNegInf), -1);
          auto kl = (logt.exp() * (logt - logp.masked_fill(hide, 0.0))).sum(-1);  // [B, n]; 0 for 1 visible
          aux_sum = aux_sum.defined() ? aux_sum + kl.sum() : kl.sum();
          for (int64_t c = std::max<int64_t>(c0, 2); c < c1; ++c) aux_rows += b * (std::min(t, (c + 1) * s) - c * s);
        }
        if (joint) {  // every row here sees >= 1 selected chunk, so no row is all -inf
          auto p = torch::softmax((logits + wb).view({b, h, n, mc * s}), -1);
          outs.push_back(torch::matmul(p, vb));
        } else {
          auto p = torch::softmax(logits, -1);
          outs.push_back(torch::matmul((p * wb).view({b, h, n, mc * s}), vb));
        }
        c0 = c1;
      }
      auto o = torch::cat(outs, 2).permute({0, 2, 1, 3}).reshape({b, t, d});
      r = ret->wo(o);
    }
    x = layer->finish(a, r, cfg_.residual == "bypass");
  }
  if (aux_sum.defined() && aux_rows > 0) aux_ = aux_sum * (cfg_.selection_aux / double(aux_rows));
  return m.final_norm(x);
}

// ---------------------------------------------------------------------------------------------------------
// Streamed inference

std::unique_ptr<StreamState> HsaModel::begin(const StreamOptions& opt) {
  auto st = std::make_unique<HsaState>();
  auto& m = *impl_;
  const auto dev = device();
  const auto opts = m.final_norm->weight.options();
  st->opt = opt;
  st->lower.resize(m.lower.size());
  st->lower_mamba.resize(m.lower_mamba.size());
  st->upper.resize(m.upper.size());
  st->kv.resize(m.upper.size());
  for (auto& s : st->kv) {
    s.host = opt.kv_offload;
    s.device = dev;
  }
  st->pending = torch::empty({0, cfg_.d_model}, opts);
  st->landmarks = torch::empty({64, m.dl}, opts);
  st->lead_chunk.assign(m.upper.size(), -1);
  st->lead_idx.resize(m.upper.size());
  st->lead_w.resize(m.upper.size());
  return st;
}

torch::Tensor HsaModel::prefill(StreamState& base, const torch::Tensor& ids_in) {
  auto* st = dynamic_cast<HsaState*>(&base);
  if (!st || st->upper.size() != impl_->upper.size()) throw Error("hsa prefill: state was not made by this model");
  torch::NoGradGuard ng;
  auto ids = check_block(ids_in, cfg_.vocab, device());
  torch::Tensor last;
  for (int64_t i0 = 0; i0 < ids.size(0); i0 += cfg_.prefill_block)
    last = prefill_piece(*st, ids.slice(0, i0, std::min<int64_t>(ids.size(0), i0 + cfg_.prefill_block)));
  return last;
}

torch::Tensor HsaModel::prefill_piece(StreamState& base, const torch::Tensor& ids) {
  auto* st = static_cast<HsaState*>(&base);
  auto& m = *impl_;
  const auto dev = ids.device();
  const int64_t n = ids.size(0), s = cfg_.chunk, d = cfg_.d_model, h = cfg_.n_heads, dh = d / h;
  const int64_t p0 = st->position;
  auto pos = torch::arange(p0, p0 + n, ids.options());
  auto x = m.emb->embed(ids).unsqueeze(0);  // [1, n, D]
  if (cfg_.token_shift) {
    const int64_t w = cfg_.token_shift_width;
    auto hist = st->last_emb.defined() ? st->last_emb : torch::zeros({1, w, d}, x.options());
    auto all = torch::cat({hist, x}, 1);
    st->last_emb = all.narrow(1, n, w).clone();  // the last w embeddings after this block
    x = m.apply_shift(x, all);
  }
  auto rt = m.rope(p0, n, dev);
  for (size_t i = 0; i < m.lower.size(); ++i) x = m.lower[i]->forward_stream(x, p0, rt, st->lower[i]);
  for (size_t i = 0; i < m.lower_mamba.size(); ++i) x = m.lower_mamba[i]->forward(x, &st->lower_mamba[i]);

  // Encode the chunks completed by this block (each chunk exactly once).
  st->pending = torch::cat({st->pending, x[0]}, 0);
  const int64_t done = st->pending.size(0) / s;
  if (done > 0) {
    auto chunks = st->pending.slice(0, 0, done * s).reshape({done, s, d});
    auto r = m.encoder->forward(chunks);
    if (st->n_chunks + done > st->landmarks.size(0)) {
      int64_t cap = st->landmarks.size(0);
      while (cap < st->n_chunks + done) cap *= 2;
      auto grown = torch::empty({cap, m.dl}, st->landmarks.options());
      grown.slice(0, 0, st->n_chunks).copy_(st->landmarks.slice(0, 0, st->n_chunks));
      st->landmarks = grown;
    }
    st->landmarks.slice(0, st->n_chunks, st->n_chunks + done).copy_(r.second);
    for (size_t l = 0; l < m.upper.size(); ++l) {
      auto kv = m.upper[l]->ret->chunk_kv(r.first);
      st->kv[l].append(kv.first, kv.second);
    }
    st->n_chunks += done;
    st->pending = st->pending.slice(0, done * s).clone();
  }

  const int64_t nc = st->n_chunks;
  auto lmk = st->landmarks.slice(0, 0, nc);
  const double lscale = 1.0 / std::sqrt(double(m.dl)), ascale = 1.0 / std::sqrt(double(dh));
  const bool chunk_gran = cfg_.granularity == "chunk";
  const bool joint = cfg_.fusion == "joint";
  // Per (row, slot): chunk fusion -> softmax weights of the selected scores; joint fusion -> the scores.
  auto fuse = [&](const torch::Tensor& sc) { return joint ? sc : selected_weights(sc); };
  auto vis_all = pos.div(s, "floor");
  for (size_t l = 0; l < m.upper.size(); ++l) {
    auto& layer = m.upper[l];
    auto a = x + layer->attn->forward_stream(layer->attn_norm(x), p0, rt, st->upper[l]);
    auto hn = layer->ret_norm(a)[0];  // [n, D]
    auto& ret = layer->ret;
    // Selection per row: idx [n, K], weights [n, K].
    torch::Tensor idx, w;
    auto ql = ret->qlmk(hn);
    if (!chunk_gran) {
      auto sel = kernels::select_chunks(ql, lmk, vis_all, cfg_.topk, lscale);
      idx = sel.idx;
      w = fuse(sel.scores);
    } else {
      // Leaders: rows at the first position of a chunk select for the whole chunk.
      const int64_t kk = std::min(cfg_.topk, nc);
      std::vector<torch::Tensor> ri, rw;
      std::vector<int64_t> lead_rows;
      for (int64_t i = 0; i < n; ++i)
        if ((p0 + i) % s == 0) lead_rows.push_back(i);
      torch::Tensor li, lw;
      if (!lead_rows.empty()) {
        auto lr = torch::tensor(lead_rows, torch::kInt64).to(dev);
        auto sel = kernels::select_chunks(ql.index_select(0, lr), lmk, vis_all.index_select(0, lr), cfg_.topk, lscale);
        li = sel.idx;
        lw = fuse(sel.scores);
      }
      size_t next = 0;
      for (int64_t i = 0; i < n; ++i) {
        if (next < lead_rows.size() && lead_rows[next] == i) {
          st->lead_chunk[l] = (p0 + i) / s;
          st->lead_idx[l] = li[next];
          st->lead_w[l] = lw[next];
          ++next;
        }
        auto ci = st->lead_idx[l], cw = st->lead_w[l];
        // pad / trim the leader's selection to the current K (the memory may have grown since)
        const int64_t have = ci.size(0);
        if (have < kk) {
          ci = torch::cat({ci, torch::full({kk - have}, -1, ci.options())});
          cw = torch::cat({cw, torch::full({kk - have}, joint ? kNegInf : 0.0, cw.options())});
        }
        ri.push_back(ci);
        rw.push_back(cw);
      }
      idx = torch::stack(ri);
      w = torch::stack(rw);
    }
    if (trace_) {
      trace_->idx.push_back(idx.cpu());
      trace_->positions.push_back(pos.cpu());
    }
    auto q = ret->q(hn).view({n, h, dh}).permute({1, 0, 2});  // [H, n, dh]
    std::vector<torch::Tensor> outs;
    for (int64_t r0 = 0; r0 < n; r0 += retrieval_block) {
      const int64_t r1 = std::min(n, r0 + retrieval_block);
      auto bi = idx.slice(0, r0, r1);
      auto bw = w.slice(0, r0, r1);
      auto bcpu = bi.cpu().contiguous();
      std::set<int64_t> uniq;
      const int64_t* pi = bcpu.data_ptr<int64_t>();
      for (int64_t z = 0; z < bcpu.numel(); ++z)
        if (pi[z] >= 0) uniq.insert(pi[z]);
      if (uniq.empty()) {
        outs.push_back(torch::zeros({h, r1 - r0, dh}, q.options()));
        continue;
      }
      std::vector<int64_t> ids_u(uniq.begin(), uniq.end());
      // remap chunk ids to rows of the gathered K/V
      auto remap = torch::full({nc + 1}, -1, torch::kInt64);
      auto rp = remap.data_ptr<int64_t>();
      for (size_t z = 0; z < ids_u.size(); ++z) rp[ids_u[z]] = int64_t(z);
      auto local = remap.index_select(0, bcpu.masked_fill(bcpu.lt(0), nc).reshape({-1})).view(bcpu.sizes()).to(dev);
      auto g = st->kv[l].gather(ids_u);
      outs.push_back(joint ? kernels::chunk_attention_joint(q.slice(1, r0, r1), local, bw, g.first, g.second, ascale)
                           : kernels::chunk_attention(q.slice(1, r0, r1), local, bw, g.first, g.second, ascale));
    }
    auto o = torch::cat(outs, 1).permute({1, 0, 2}).reshape({1, n, d});
    x = layer->finish(a, ret->wo(o), cfg_.residual == "bypass");
  }
  st->position += n;
  return m.emb->logits(m.final_norm(x.select(1, n - 1))).reshape({-1});
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
