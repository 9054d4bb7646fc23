// SWA baseline model (see swa.hpp).
#include "models/swa.hpp"

#include "models/profile.hpp"
#include "models/prune.hpp"
#include "core/error.hpp"

namespace lctx::models {

int64_t SwaState::bytes() const {
  int64_t b = 0;
  for (const auto& c : caches) b += c.bytes();
  return b;
}

SwaModel::SwaModel(const SwaConfig& cfg) : cfg_(cfg) {
  emb_ = register_module("emb", EmbeddingHead(cfg.vocab, cfg.d_model, cfg.tie_embeddings));
  auto list = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.n_layers; ++i) {
    blocks_.push_back(TransformerBlock(cfg.d_model, cfg.n_heads, cfg.window, cfg.mlp_hidden, cfg.rope_base,
                                       cfg.norm_eps, cfg.qk_norm));
    list->push_back(blocks_.back());
  }
  final_norm_ = register_module("final_norm", RMSNorm(cfg.d_model, cfg.norm_eps));
  init_weights(*this, cfg.n_layers);
}

torch::Tensor SwaModel::head(const torch::Tensor& hidden) { return emb_->logits(hidden); }

torch::Tensor SwaModel::forward_hidden(const torch::Tensor& ids_in) {
  auto ids = check_batch(ids_in, cfg_.vocab, device());
  auto x = emb_->embed(ids);
  auto rt = blocks_.front()->attn->rope.tables(0, ids.size(1), x.device());
  for (auto& b : blocks_) x = b->forward(x, 0, rt);
  return final_norm_(x);
}

std::unique_ptr<StreamState> SwaModel::begin(const StreamOptions& opt) {
  if (opt.block < 0) throw Error("swa: stream option block must be >= 0");
  auto st = std::make_unique<SwaState>();
  st->caches.resize(blocks_.size());
  st->opt = opt;
  return st;
}

// Pruned: layer j (of L, window W) needs its input on the last (L - j)(W - 1) + 1 positions of the call, so
// the embedding runs on the last L(W - 1) + 1 and pieces before them are skipped (models/prune.hpp).
torch::Tensor SwaModel::prefill(StreamState& base, const torch::Tensor& ids_in) {
  auto* st = dynamic_cast<SwaState*>(&base);
  if (!st || st->caches.size() != blocks_.size()) throw Error("swa prefill: state was not made by this model");
  torch::NoGradGuard ng;
  auto ids = check_block(ids_in, cfg_.vocab, device());
  const int64_t total = ids.size(0), p0 = st->position, last_pos = p0 + total - 1;
  const int64_t block = st->opt.block > 0 ? st->opt.block : cfg_.prefill_block;
  std::vector<LayerRows> plan(blocks_.size(), LayerRows{p0, p0});
  if (st->opt.prune) {
    plan = receptive_rows(p0, last_pos, std::vector<int64_t>(blocks_.size(), cfg_.window - 1), {});
    st->pruned = true;
  }
  const auto dev = ids.device();
  torch::Tensor last;
  for (int64_t i0 = 0; i0 < total; i0 += block) {
    const int64_t a = p0 + i0, e = std::min(p0 + total, a + block);  // piece positions [a, e)
    if (e <= plan.front().in0) continue;                               // no layer needs these positions
    int64_t from = std::max(a, plan.front().in0);                      // rows held in x: [from, e)
    torch::Tensor x;
    {
      profile::Scope ps("embed", dev);
      x = emb_->embed(ids.slice(0, from - p0, e - p0).unsqueeze(0));
    }
    auto rt = blocks_.front()->attn->rope.tables(from, e - from, dev);
    for (size_t l = 0; l < blocks_.size(); ++l) {
      profile::Scope ps("layers", dev);
      const int64_t in0 = std::max(a, plan[l].in0), out0 = std::min(e, std::max(a, plan[l].out0));
      if (in0 >= e) break;  // this layer and those above start in a later piece
      if (in0 > from) x = x.narrow(1, in0 - from, e - in0);
      x = blocks_[l]->forward_stream(x, in0, Rope::slice(rt, in0 - from, e - in0), st->caches[l], e - out0);
      rt = Rope::slice(rt, out0 - from, e - out0);
      from = out0;
      st->prunable_rows += e - out0;
    }
    if (e == p0 + total) last = x.select(1, x.size(1) - 1);  // [1, C]: the call's last position
  }
  st->position += total;
  profile::Scope ps("head", dev);
  return emb_->logits(final_norm_(last)).reshape({-1});
}

}  // namespace lctx::models
