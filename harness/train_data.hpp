// Training data mixture for the built-in models: windows of haystack-corpus text (plain LM) and synthetic
// task samples from lctx's own generators (RULER NIAH / variable tracking, bAbI qa1-qa5 in BABILong form)
// at the training context, each row a pure function of (seed, step, row). Task samples are
// prompt + " " + answer + EOS with the loss on the answer (and EOS) tokens; the prompt weight is an option.
//
// Seed discipline: training samples are generated with run seed (seed | kTrainSeedTag), i.e. with bit 63
// set; evaluation seeds (lctx generate/run --seed, eval-needle) are below 2^63 (in practice < 2^32), so the
// per-sample seeds (sample_seed hashes the run seed) of training and evaluation come from disjoint run
// seeds. `lctx train-eval` refuses tagged seeds.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/train.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/rng.hpp"
#include "tasks/sample.hpp"

namespace lctx::harness {

constexpr uint64_t kTrainSeedTag = 1ULL << 63;
inline uint64_t training_run_seed(uint64_t seed) { return seed | kTrainSeedTag; }
inline bool is_training_seed(uint64_t seed) { return (seed & kTrainSeedTag) != 0; }

// One component of the mixture. Names: "corpus" (LM on haystack text), "copy" (a random segment of corpus
// words and numbers, then the same segment again, loss on the second copy: a dense retrieval warm-up),
// "copy-wide" (copy episodes packed back to back, distances 4 .. T/2: local and long-range copying), "niah" (the single-needle RULER
// tasks of the catalogue), "niah1" (the first of them), "babi" (the BABILong headline tasks), a task name of a
// catalogue, "ruler/<task>", "babilong/<task>" (one task). Tasks of a group are drawn uniformly.
struct MixComponent {
  std::string name;
  double weight = 0;                 // normalised: the weights of a mixture sum to 1
  std::string suite;                 // "" for the corpus-built components (corpus, copy, copy-wide)
  std::vector<std::string> tasks;
};

// "corpus:0.3,niah:0.5,babi:0.2" -> components (weights normalised). A bare name means weight 1. Throws
// Error on an unknown name, a bad or negative weight, a duplicate, or an all-zero mixture.
std::vector<MixComponent> parse_mix(const std::string& spec);

struct TrainDataOptions {
  std::string mix = "niah:1";
  int64_t context = 512;             // T: input tokens per row (rows hold T+1 tokens)
  // Target lengths of task samples (each <= context; shorter rows are padded with weight 0). Empty: {context}.
  std::vector<int64_t> lengths;
  uint64_t seed = 1;                 // the training seed (tagged with kTrainSeedTag for the generators)
  double prompt_weight = 0.0;        // loss weight of the prompt tokens of task samples (answer: 1)
  // "token": every supervised token weighs the same in a batch (a copy row with ~250 supervised tokens
  // outweighs a needle row with ~9); "row": each row's weights are scaled to sum to 1, so every row counts
  // the same and the mixture weights are the loss shares.
  std::string loss_norm = "token";
  std::string tokenizer;             // "" = default tokenizer
  std::string haystack_dir;          // "" = default corpus
};

struct TrainRow {
  std::vector<int32_t> tokens;       // context + 1
  std::vector<float> weight;         // context
  std::string source;                // "corpus", "copy", "copy-wide" or "<suite>/<task>"
  int64_t answer_tokens = 0;         // task rows: answer + EOS tokens kept in the row (copy: weighted tokens)
  bool truncated = false;            // the sample did not fit and was cut at the end
};

class TrainData {
 public:
  TrainData(const TrainDataOptions& opt, const Resources& res);
  ~TrainData();
  // Pure function of (options, step, row).
  TrainRow row(int64_t step, int64_t row) const;
  models::Batch batch(int64_t step, int64_t batch) const;   // rows built on up to 2 threads
  models::BatchSource source() const;                       // captures this object: keep it alive
  nlohmann::json describe() const;                          // the recipe, for the checkpoint config
  const std::vector<MixComponent>& mixture() const { return mix_; }
  const Resources& resources() const { return res_; }

 private:
  TrainRow corpus_row(Rng& rng) const;
  std::vector<int32_t> random_segment(Rng& rng, int64_t m) const;
  TrainRow copy_row(Rng& rng) const;
  TrainRow copy_wide_row(Rng& rng) const;
  TrainRow task_row(const MixComponent& c, Rng& rng, int64_t index) const;
  TrainDataOptions opt_;
  Resources res_;
  std::vector<MixComponent> mix_;
  struct Gens;
  std::unique_ptr<Gens> gens_;
  int32_t pad_id_ = 0, eos_id_ = 0;
};

}  // namespace lctx::harness
