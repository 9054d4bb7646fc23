// HSA: hierarchical sparse attention with a chunk encoder (landmark + chunk K/V), token-level top-k chunk
// retrieval in the upper layers, and the three length-generalisation principles of arXiv 2510.17196 as
// switches (chunk encoder, bypassing residual, enforced selection sparsity). See docs/hsa.md.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/config.hpp"
#include "models/model.hpp"

namespace lctx::models {

struct LayerRows;

// Building blocks of the HSA retrieval, shared by the full forward and streamed inference (tested one by one).
namespace hsa {

// Chunks selected per token in the full forward: eval -> topk; training with enforced sparsity -> train_topk
// (or min(topk, max(2, n_chunks / sparsity_ratio)) when train_topk is 0); training with sparsity off -> every
// chunk (n_chunks: each token then mixes all its visible chunks). Never more than n_chunks.
int64_t selected_count(const HsaConfig& c, int64_t n_chunks, bool training);

// Chunk weights of selected scores [..., K] ordered most recent chunk first along the last axis (-inf = empty
// slot, weight 0; rows without a selection are all 0), per `mode` (see ChunkWeights).
torch::Tensor chunk_weights(const torch::Tensor& scores, ChunkWeights mode);

// The same over all chunks: scores [..., N] in chunk order 0..N-1 and the selection mask [..., N] (bool) ->
// dense weights [..., N], exactly 0 for unselected chunks (the gathered form's weights, differentiable in the
// scores).
torch::Tensor dense_chunk_weights(const torch::Tensor& scores, const torch::Tensor& selected, ChunkWeights mode);

// Gathered form for streamed inference: slots sorted by chunk index, most recent first, and their weights
// (chunk fusion) or the raw scores (joint fusion, the bias of kernels::chunk_attention_joint).
std::pair<torch::Tensor, torch::Tensor> slot_weights(const torch::Tensor& idx, const torch::Tensor& scores,
                                                     const HsaConfig& c);

// selection_aux for the query rows of one block: KL(target || softmax of the landmark scores) per row, where
// the target is the softmax over the row's visible chunks of `mass` (the head-mean logsumexp of the row's token
// logits against each chunk; detached here). mass, scores [B, n, N], hidden [1 or B, n, N] (true = chunk not
// visible to the row). Returns [B, n]; rows with one visible chunk give 0.
torch::Tensor selection_aux_kl(const torch::Tensor& mass, const torch::Tensor& scores, const torch::Tensor& hidden);

// Training-time retrieval, dense over the visible chunks (unselected chunks weigh exactly 0, so it equals the
// gathered form; cost O(T^2)). q [B, H, T, dh]; k, v [B, G, N, S, dh] (G K/V heads, H a multiple of G: query
// head h reads K/V head h / (H / G)); w [B, T, N]: chunk weights (fusion chunk) or selected scores with -inf
// elsewhere (fusion joint); token t sees chunks < t / S only. softmax1: a zero logit joins every chunk's
// softmax. aux_scores (defined -> selection_aux): the landmark scores [B, T, N]. Query rows are processed in
// groups of query chunks (about 8 M logits at once).
struct DenseRetrieval {
  torch::Tensor out;      // [B, H, T, dh]
  torch::Tensor aux_sum;  // sum of selection_aux_kl over rows with >= 2 visible chunks (undefined if none)
  int64_t aux_rows = 0;   // those rows
};
DenseRetrieval dense_retrieval(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& w, int64_t chunk, HsaFusion fusion, bool softmax1, double scale,
                               const torch::Tensor& aux_scores = torch::Tensor());

}  // namespace hsa

// Device-side vs host-side bytes held by a stream state (for the flat-memory benchmark).
struct HsaMemoryStats {
  int64_t chunks = 0;             // encoded chunks in the memory
  int64_t landmark_bytes = 0;     // always on the compute device
  int64_t kv_device_bytes = 0;    // chunk K/V kept on the device (kv_offload = false)
  int64_t kv_host_bytes = 0;      // chunk K/V kept in host memory (kv_offload = true)
  int64_t local_bytes = 0;        // O(window) local state: sliding-window caches + the pending chunk
};

class HsaModel : public Model {
 public:
  explicit HsaModel(const HsaConfig& cfg);
  std::string kind() const override { return "hsa"; }
  nlohmann::json config() const override;
  int64_t vocab_size() const override { return cfg_.vocab; }
  torch::Tensor forward_hidden(const torch::Tensor& ids) override;
  torch::Tensor head(const torch::Tensor& hidden) override;
  torch::Tensor auxiliary_loss() const override { return aux_; }
  void set_full_selection(bool on) override { full_selection_ = on; }
  void set_selection_fraction(double f) override { selection_fraction_ = f; }
  std::unique_ptr<StreamState> begin(const StreamOptions& opt = {}) override;
  torch::Tensor prefill(StreamState& st, const torch::Tensor& ids) override;

  const HsaConfig& hsa_config() const { return cfg_; }
  HsaMemoryStats memory_stats(const StreamState& st) const;

  // Test hook: when set, every retrieval records, per retrieval layer (in call order), the selected chunk ids
  // [B, T, K] (forward_logits) or [n, K] (prefill; n = tokens of the block), -1 = empty slot, plus the
  // absolute positions of the rows ([T] or [n]).
  struct SelectionTrace {
    std::vector<torch::Tensor> idx;
    std::vector<torch::Tensor> positions;
  };
  void set_trace(SelectionTrace* trace) { trace_ = trace; }

  // Inference-time retrieval sub-block: query rows per gather of chunk K/V (bounds device memory).
  int64_t retrieval_block = 256;
  // Training forward: always use the dense retrieval (O(T^2), every visible chunk's logits) instead of the
  // gathered kernels::chunk_attention_train. For tests (both give the same loss and gradients); the dense path
  // is taken anyway with selection_aux or when at least half of the chunks are selected.
  bool dense_training_retrieval = false;

 private:
  // Pruned prefill: the rows every upper layer must compute for a call pushing positions first..last.
  std::vector<LayerRows> upper_rows(int64_t first, int64_t last) const;
  int64_t upper_modules() const;  // entries of upper_rows: the upper stack's modules in stream order
  torch::Tensor prefill_piece(StreamState& st, const torch::Tensor& ids, const std::vector<LayerRows>& plan,
                              bool want_logits);
  struct AuxAccum {  // selection_aux over the retrieval layers of one forward
    bool on = false;
    torch::Tensor sum;
    int64_t rows = 0;
  };
  torch::Tensor train_retrieval(const torch::Tensor& ql, const torch::Tensor& q, const torch::Tensor& kc,
                                const torch::Tensor& vc, const torch::Tensor& lmk, AuxAccum& aux);
  // Streamed retrieval of retrieval layer `layer` for rows at positions pos0.. (pos [n]).
  torch::Tensor stream_retrieval(StreamState& st, size_t layer, const torch::Tensor& ql, const torch::Tensor& q,
                                 const torch::Tensor& pos, int64_t pos0);
  struct Impl;
  HsaConfig cfg_;
  std::shared_ptr<Impl> impl_;
  SelectionTrace* trace_ = nullptr;
  double selection_fraction_ = 0;  // the trainer's top-k anneal (set_selection_fraction)
  bool full_selection_ = false;  // training forward selects every visible chunk (the trainer's warm-up)
  torch::Tensor aux_;  // selection_aux * mean KL of the last training-mode forward_hidden (undefined otherwise)
};

}  // namespace lctx::models
