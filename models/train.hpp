// The trainer: causal LM loss with a per-token loss weight, AdamW, linear warmup + cosine decay, gradient
// clipping, bf16 autocast on CUDA, periodic checkpoints and exact resume. It knows nothing of tasks: batches
// come from a callback that must be a pure function of the step (so a resumed run sees the same data).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/model.hpp"

namespace lctx::models {

// One training batch. tokens [B, T+1] int64: the model reads tokens[:, :T] and predicts tokens[:, 1:].
// weight [B, T] float32: the loss weight of each predicted token (0 = ignored: padding, prompt tokens of a
// task sample when the loss is on the answer only). The loss is sum(weight * nll) / sum(weight).
struct Batch {
  torch::Tensor tokens;
  torch::Tensor weight;
};

// Batch for a given step (0-based) and batch size. Must be deterministic in (step, batch): resume relies on it.
using BatchSource = std::function<Batch(int64_t step, int64_t batch)>;

struct TrainOptions {
  int64_t steps = 1000;        // total optimizer steps (a resumed run continues up to this)
  int64_t batch = 8;
  double lr = 1e-3;            // peak learning rate
  int64_t warmup = 100;        // linear warmup steps (from lr/warmup to lr)
  double min_lr = 1e-4;        // cosine floor, reached at the last step
  double weight_decay = 0.1;   // AdamW decoupled decay, on matrices (dim >= 2) only
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double clip = 1.0;           // global gradient-norm clip (0: off)
  uint64_t seed = 1;           // torch RNG seed (init is the caller's; this drives Gumbel noise, dropout)
  std::string precision = "auto";  // "auto" (bf16 autocast on CUDA, fp32 on CPU) | "fp32" | "bf16"
  int64_t save_every = 0;      // checkpoint + trainer state every N steps (0: only at the end)
  int64_t log_every = 10;      // stderr progress line every N steps (the JSONL log has every step)
  std::string out_dir;         // "" = no files at all (tests)
  bool resume = false;         // continue from out_dir/trainer_state.pt
  bool force = false;          // a fresh run may overwrite the trained model, state and log in out_dir
  bool quiet = false;          // no stderr progress
  bool save_model = true;      // write the model checkpoint (save_checkpoint) into out_dir with the state
  // Selection warm-up (UltraLong's recipe): for steps < full_selection_steps the model's training forward
  // selects every visible chunk (Model::set_full_selection), then its configured training top-k.
  int64_t full_selection_steps = 0;
  // Then a linear anneal over this many steps: the training forward selects at least a fraction f of the
  // visible chunks (Model::set_selection_fraction), f going from 1 down to 0, i.e. to the training top-k.
  int64_t topk_anneal_steps = 0;
  // Time budget of this invocation in seconds (<= 0: none). Before a step that would end past the budget
  // (judged by the mean step time so far) the trainer saves the checkpoint and the trainer state and returns
  // with TrainResult::complete = false; --resume continues exactly (a segmented run).
  double time_limit_s = 0;
  nlohmann::json extra_config = nlohmann::json::object();  // merged into the checkpoint config
                                                            // ("tokenizer_hash", "train": recipe ...)
};

struct StepLog {
  int64_t step = 0;            // 1-based number of completed steps
  double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0, elapsed_s = 0;
  double aux = 0;               // the model's auxiliary loss (HSA selection_aux), 0 when it has none
  int64_t tokens = 0;          // tokens processed so far (inputs, padding included)
};

struct TrainResult {
  int64_t steps_done = 0;      // total completed steps (resumed ones included)
  double last_loss = 0;        // loss of the last step
  double elapsed_s = 0;        // wall time of this invocation
  double tokens_per_s = 0;     // average over this invocation
  bool complete = true;        // false: stopped by time_limit_s before opt.steps
  double train_seconds = 0;    // training time summed over all segments of the run (resumed ones included)
  int64_t segments = 1;        // invocations that trained this run (1 + resumes)
};

// Refuses bad options (non-finite or out-of-range numbers) and, for a fresh run without `force`, an out_dir
// that already holds a trained model, trainer state or log. train() calls it first; callers may call it before
// any expensive setup. Throws lctx::Error.
void check_train_options(const TrainOptions& o);

// Learning rate at a 0-based step: linear warmup to lr over `warmup` steps, then cosine to min_lr at steps-1.
double lr_at(const TrainOptions& o, int64_t step);

// AdamW over `params` as the trainer builds it (lr, betas, eps, weight decay of `opt`): two groups, weight
// decay on matrices (dim >= 2) only.
std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& params, const TrainOptions& opt);
// Global gradient-norm clip without a host round trip: returns the norm before clipping (a 0-d device
// tensor) and scales every gradient by min(1, max_norm / (norm + 1e-6)) (max_norm <= 0: norm only).
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);
// One AdamW step of `optim` with LibTorch's fused multi-tensor kernel (at::_fused_adamw_, LibTorch >= 2.1,
// CUDA fp32 parameters sharing one step count): the same update as optim.step(), state kept in optim (so
// save/load are unchanged). Returns false, doing nothing, where it does not apply.
bool adamw_step_fused(torch::optim::AdamW& optim);
// Loss of one batch (forward only; no grad bookkeeping of its own). Used by train() and tests.
torch::Tensor batch_loss(Model& model, const Batch& b);

// Trains `model` in place (it must already be on the wanted device). Calls on_step after every step (after
// that step's periodic save, so an exception thrown from on_step simulates a crash right after a save).
// With out_dir: writes out_dir/train_log.jsonl (one JSON object per step), checkpoints via save_checkpoint
// every save_every steps and at the end, and out_dir/trainer_state.pt (optimizer state, step, RNG states,
// model weights) so that --resume continues exactly. Throws lctx::Error on bad options or a missing state.
TrainResult train(Model& model, const BatchSource& source, const TrainOptions& opt,
                  const std::function<void(const StepLog&)>& on_step = {});

// File names inside out_dir.
inline const char* kTrainLog = "train_log.jsonl";
inline const char* kTrainerState = "trainer_state.pt";

}  // namespace lctx::models
