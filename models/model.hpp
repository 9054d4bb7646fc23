// The one interface every built-in model implements: full forward (training, equivalence tests) and
// streamed inference (begin a state, push token blocks of any size, generate greedily). models/ knows
// nothing of tasks: it sees token ids only.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace lctx::models {

// Opaque per-sequence streaming state (SWA ring-buffer K/V, Mamba conv+SSM state, HSA chunk memory ...).
struct StreamState {
  virtual ~StreamState() = default;
  int64_t position = 0;  // tokens consumed so far
  // Positions computed by the layers that pruned prefill may skip (HSA upper layers, SWA layers), summed over
  // those layers and over every prefill call (decoding included). The full path computes every position in
  // each of them; Mamba has no such layer and counts nothing.
  int64_t prunable_rows = 0;
  bool pruned = false;   // a prefill call of this state ran the pruned path (StreamOptions::prune took effect)
};

struct StreamOptions {
  bool kv_offload = false;  // HSA: keep chunk K/V in (pinned) host memory, landmarks on the device
  // Exact receptive-field ("pruned") prefill: a prefill call computes the layers that reach later positions
  // only through sliding windows (HSA upper layers, every SWA layer) only on the positions that can still
  // influence the call's last logits or any later token. The last logits and all later decoding equal the
  // full path's (same maths on the same rows; tests/models). docs/models.md derives the bound per model.
  bool prune = false;
  // Tokens per internal prefill piece (0: the config's prefill_block). A prefill call of n tokens is processed
  // in pieces of this size; under pruning only the last pieces reach the upper layers, so large pieces mean
  // fewer launches on a GPU.
  int64_t block = 0;
  // HSA chunk memory storage at inference: "fp32" | "bf16" (landmarks and chunk K/V; maths in float32).
  std::string precision = "fp32";
};

class Model : public torch::nn::Module {
 public:
  virtual std::string kind() const = 0;           // "hsa" | "swa" | "mamba"
  virtual nlohmann::json config() const = 0;      // the architecture part of the checkpoint config
  virtual int64_t vocab_size() const = 0;

  // Full causal forward: ids [B, T] (int64) -> logits [B, T, V] (float32). `training` enables the
  // training-only behaviour (HSA's Gumbel-noised selection, dropout if any). = head(forward_hidden(ids)).
  torch::Tensor forward_logits(const torch::Tensor& ids) { return head(forward_hidden(ids)); }
  // The same forward up to the final norm: [B, T, D]. The trainer applies the head only to the positions
  // that carry loss weight (task rows weigh ~9 of 512 positions), which saves most of the vocabulary matmul.
  virtual torch::Tensor forward_hidden(const torch::Tensor& ids) = 0;
  // LM head: final hidden states [..., D] -> logits [..., V].
  virtual torch::Tensor head(const torch::Tensor& hidden) = 0;
  // An already weighted auxiliary training loss computed by the last forward_hidden in training mode (HSA's
  // `selection_aux`), added to the LM loss by the trainer; undefined when the model has none.
  virtual torch::Tensor auxiliary_loss() const { return {}; }
  // Training-time selection warm-up: while on, a model with chunk selection (HSA) selects every visible chunk
  // in its training forward (top-k covers the whole sequence, no ranking noise) instead of its training
  // top-k; inference is unchanged. Models without selection ignore it. Set by the trainer per step.
  virtual void set_full_selection(bool on) { (void)on; }
  // Training-time selection anneal: with f in (0, 1] the training forward selects at least ceil(f * the
  // sequence's complete chunks), at most the visible ones (its training top-k when that is more); 0 = the
  // training top-k alone. Set by the trainer per step.
  virtual void set_selection_fraction(double f) { (void)f; }

  // Streamed inference on device(); results equal forward_logits on the same ids within a documented
  // tolerance (tests/models).
  virtual std::unique_ptr<StreamState> begin(const StreamOptions& opt = {}) = 0;
  // Pushes a block of ids [n] (int64, any n >= 1). Returns the logits of the block's last token [V] (float32).
  virtual torch::Tensor prefill(StreamState& st, const torch::Tensor& ids) = 0;
  // Greedy decoding: starts from the logits of the last pushed token, appends up to max_new tokens,
  // stops after eos_id (not included). Pushes the generated tokens into the state.
  std::vector<int32_t> generate(StreamState& st, const torch::Tensor& last_logits, int max_new, int32_t eos_id);

  torch::Device device() const;
};

// Builds a model from an architecture config (kind inside: {"kind":"hsa", ...}); unknown keys are errors.
std::shared_ptr<Model> build_model(const nlohmann::json& arch);
// Kinds: "swa" and "mamba" built in; "hsa" when models/hsa.hpp is part of the build; any other kind through
// register_model_kind (e.g. from a static initialiser; a registered kind overrides a built-in one).
using ModelFactory = std::function<std::shared_ptr<Model>(const nlohmann::json&)>;
void register_model_kind(const std::string& kind, ModelFactory factory);
std::vector<std::string> model_kinds();  // sorted

// CPU threading for LibTorch: the intra-op pool gets `threads` (0: all cores). When LibTorch's BLAS is
// OpenBLAS (Debian's libopenblas0-pthread), its own thread pool is pinned to one thread unless the user set
// OPENBLAS_NUM_THREADS: otherwise both pools spin on the same cores (the tiny HSA trains 1.4-2x faster on a
// 2-core machine with it, docs/training.md). Returns the intra-op thread count.
int configure_cpu_threads(int threads = 0);

// Checkpoints are folders: DIR/config.json ({"arch":..., "tokenizer_hash":..., "train":..., "lctx_version":...})
// and DIR/model.safetensors. load_checkpoint checks names, shapes, dtype and the tokenizer hash (pass "" to
// skip) and throws lctx::Error with a one-line message on any mismatch or corrupt file.
struct Checkpoint {
  std::shared_ptr<Model> model;
  nlohmann::json config;
};
void save_checkpoint(const std::string& dir, Model& model, const nlohmann::json& extra_config);
// arch_override (an object, may be empty): architecture keys that replace the stored ones before the model is
// built (e.g. a training-only switch for a second stage); the weights must still match name for name and shape
// for shape. The returned config's "arch" carries the overridden keys.
Checkpoint load_checkpoint(const std::string& dir, const std::string& expect_tokenizer_hash,
                           const torch::Device& device,
                           const nlohmann::json& arch_override = nlohmann::json::object());

}  // namespace lctx::models
