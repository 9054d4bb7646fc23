// Architecture configs of the built-in models (the "arch" object of a checkpoint's config.json, `lctx train
// --config`): HsaConfig, SwaConfig, MambaConfig with their presets and JSON readers/writers, and the
// ConfigReader they share. Free of LibTorch, so the parsers are tested and fuzzed on their own
// (fuzz/fuzz_config.cpp); the models (hsa.hpp, swa.hpp, mamba.hpp) build from them.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lctx::models {

// ---- config parsing -------------------------------------------------------------------------------------
// Reads typed keys (with defaults) from a JSON object and, in finish(), throws lctx::Error naming the first
// key that was never read. `what` prefixes messages ("swa config").
class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& j, std::string what);
  int64_t get_int(const std::string& key, int64_t def, int64_t min = 1);
  double get_double(const std::string& key, double def, double min = 0.0);
  bool get_bool(const std::string& key, bool def);
  std::string get_string(const std::string& key, const std::string& def, const std::set<std::string>& allowed = {});
  bool has(const std::string& key) const;
  void finish() const;  // unknown keys -> lctx::Error
  [[noreturn]] void fail(const std::string& msg) const;

 private:
  const nlohmann::json& j_;
  std::string what_;
  std::set<std::string> used_;
};

// Switches of the HSA model, parsed from their JSON strings once (HsaConfig::from_json); the model never
// compares strings per layer or step. The JSON spelling of each value is in the comment.
enum class HsaLayout { lctx, paper };                       // "lctx" | "paper"
enum class ChunkEncoderKind { mean_pool, encoder, encoder_cls };  // "mean-pool" | "encoder" | "encoder+cls"
enum class HsaResidual { bypass, standard };                // "bypass" | "standard"
enum class SelectionSparsity { enforced, off };             // "enforced" | "off"
enum class HsaGranularity { token, chunk };                 // "token" | "chunk"
enum class HsaFusion { chunk, joint };                      // "chunk" | "joint"
enum class ChunkWeights { softmax, stick_breaking, softmax1 };  // "softmax" | "stick-breaking" | "softmax1"
enum class HsaLower { swa, mamba };                         // "swa" | "mamba"
enum class HsaInit { scaled, normal };                      // "scaled" | "normal"

struct HsaConfig {
  int64_t vocab = 8192;
  int64_t d_model = 128;
  int64_t n_heads = 4;
  int64_t mlp_hidden = 0;       // 0 -> the layers' default for d_model
  // Layer layout (docs/hsa.md):
  //   lctx:  lower layers -> chunk encoder -> upper_layers x [SWA, retrieval with its own chunk K/V, MLP]
  //   paper: lower layers -> chunking (encoder, ONE shared chunk K/V projection, landmarks) ->
  //          upper_groups x [HSA layer (optional internal SWA, retrieval, its own MLP), group_swa_layers SWA blocks]
  HsaLayout layout = HsaLayout::lctx;
  int64_t lower_layers = 2;
  HsaLower lower = HsaLower::swa;  // lower layers: swa | mamba (RAMba: Mamba blocks, d_state 16, d_conv 4,
                                   // expand 2; the upper layers keep their window attention)
  int64_t upper_layers = 2;     // lctx layout: upper layers (each with retrieval)
  int64_t upper_groups = 2;     // paper layout: HSA layers (one per group)
  int64_t group_swa_layers = 1; // paper layout: plain SWA blocks after each HSA layer
  bool hsa_swa = false;         // paper layout: the HSA layer runs a sliding-window attention before retrieval
  int64_t kv_heads = 0;         // K/V heads of the chunk memory (0 -> n_heads); query heads share them (GQA)
  int64_t window = 128;         // sliding window of the lower and upper self-attention
  int64_t chunk = 64;           // S: tokens per chunk
  int64_t topk = 8;             // chunks retrieved per token at inference
  int64_t landmark_dim = 0;     // 0 -> d_model
  int64_t encoder_layers = 2;   // bidirectional layers of the chunk encoder ("encoder", "encoder+cls")
  ChunkEncoderKind chunk_encoder = ChunkEncoderKind::encoder_cls;
  HsaResidual residual = HsaResidual::bypass;
  SelectionSparsity selection_sparsity = SelectionSparsity::enforced;
  // enforced: training top-k = train_topk when > 0, else min(topk, max(2, n_chunks / sparsity_ratio)).
  int64_t sparsity_ratio = 16;
  int64_t train_topk = 0;
  HsaGranularity granularity = HsaGranularity::token;  // token (HSA) | chunk (GCA/DRT-style: one per query chunk)
  // How the selected chunks' token attentions combine: chunk (HSA: softmax inside each chunk, outputs mixed
  // by the chunk weights) | joint (one softmax over all selected tokens, each logit shifted by its chunk's
  // selection score, as in landmark attention). See docs/hsa.md.
  HsaFusion fusion = HsaFusion::chunk;
  // Chunk weights from the selected scores (fusion "chunk"): softmax (sums to 1) | stick-breaking (in recency
  // order, w_k = sigmoid(s_k) prod_{j more recent} sigmoid(-s_j), sums to < 1) | softmax1 (softmax with an
  // extra zero logit, sums to < 1). The last two let a layer retrieve "nothing".
  ChunkWeights chunk_weights = ChunkWeights::softmax;
  bool chunk_softmax1 = false;  // softmax-off-by-one inside each chunk (a zero logit joins every chunk's softmax)
  bool qk_norm = false;         // RMSNorm of q and k per head in the SWA layers, the encoder and the retrieval
  HsaInit init = HsaInit::scaled;  // scaled: GPT-2 (output projections 0.02 / sqrt(2 layers)); normal: all N(0, 0.02)
  // lctx addition (off in the paper's layout): the input of every position also gets a learned projection of
  // the previous token's embedding, so keys carry "what came before me" from the first step and copy /
  // induction retrieval forms early in small-budget training (the role a short causal conv plays in Mamba).
  bool token_shift = false;
  // token_shift: how many previous tokens (1 = the previous one only). With 2, a key also carries the token
  // before its predecessor, so copying a digit string with repeated digits ("...744...") stays unambiguous.
  int64_t token_shift_width = 1;
  // lctx addition: the retrieval keys of a chunk also see the previous token's encoder output,
  // k_j = W_k tok_j + W_kp tok_{j-1} (tok_{-1} = 0: inside the chunk only, so a chunk's K/V still depend on
  // that chunk alone). A query then finds "the place after my current token" by plain same-token matching:
  // the induction step of copying, as a shifted key (a width-2 short convolution on K).
  bool key_shift = false;
  // lctx addition: weight of an auxiliary selection loss in training (0 = off, the paper's end-to-end
  // selection only). For every query token, the target is the distribution over its visible chunks of the
  // token attention mass each chunk would receive (softmax over chunks of the head-mean logsumexp of the
  // token logits, computed densely and detached); the loss is KL(target || softmax of the landmark scores),
  // so the landmarks learn which chunk holds the matching tokens even when that chunk was not selected.
  // Token granularity only.
  double selection_aux = 0.0;
  double rope_base = 10000.0;
  bool tie_embeddings = true;
  int64_t prefill_block = 4096; // streamed blocks longer than this are processed in pieces of this size

  int64_t head_dim() const { return d_model / n_heads; }
  int64_t kv_head_count() const { return kv_heads > 0 ? kv_heads : n_heads; }
  // Layers with retrieval: upper_layers (lctx) or upper_groups (paper).
  int64_t retrieval_layers() const { return layout == HsaLayout::paper ? upper_groups : upper_layers; }

  static HsaConfig preset(const std::string& name);  // "tiny" | "small" | "paper"
  // Keys of the JSON config are the field names above (plus "kind":"hsa" and "preset", applied first);
  // enum values are the strings in the comments of the enums; unknown keys and bad values throw lctx::Error.
  static HsaConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

struct SwaConfig {
  int64_t vocab = 8192;
  int64_t d_model = 128;
  int64_t n_layers = 4;
  int64_t n_heads = 4;
  int64_t window = 256;         // keys per query, itself included
  int64_t mlp_hidden = 0;       // 0 -> default_mlp_hidden(d_model)
  double rope_base = 10000.0;
  double norm_eps = 1e-6;
  bool tie_embeddings = true;
  bool qk_norm = false;         // RMSNorm of q and k per head (as in the HSA paper preset's SWA layers)
  int64_t prefill_block = 4096; // streamed blocks longer than this are processed in pieces of this size

  static SwaConfig preset(const std::string& name);  // "tiny" | "small"
  // Keys: the field names, "kind" ("swa") and "preset" (applied first). Unknown keys -> lctx::Error.
  static SwaConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;  // every field, "kind":"swa"
};

struct MambaConfig {
  int64_t vocab = 8192;
  int64_t d_model = 128;
  int64_t n_layers = 8;
  int64_t d_state = 16;
  int64_t d_conv = 4;
  int64_t expand = 2;
  int64_t dt_rank = 0;          // 0 -> ceil(d_model / 16)
  double dt_min = 0.001, dt_max = 0.1;  // initial range of softplus(dt_proj.bias)
  double norm_eps = 1e-6;
  bool tie_embeddings = true;
  int64_t scan_chunk = 64;      // chunk of the parallel scan (training / autograd path)
  int64_t prefill_block = 4096; // streamed blocks longer than this are processed in pieces of this size

  int64_t d_inner() const { return expand * d_model; }
  int64_t rank() const { return dt_rank > 0 ? dt_rank : (d_model + 15) / 16; }
  static MambaConfig preset(const std::string& name);  // "tiny" | "small"
  // Keys: the field names, "kind" ("mamba") and "preset" (applied first). Unknown keys -> lctx::Error.
  static MambaConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

}  // namespace lctx::models
