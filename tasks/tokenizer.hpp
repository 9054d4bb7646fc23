// SentencePiece wrapper. Any SentencePiece .model works (lctx's default, Llama-2, Mistral, Gemma ...).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lctx {

class Tokenizer {
 public:
  // Throws Error("tokenizer FILE: ...") when the file is missing or not a valid SentencePiece model.
  static std::shared_ptr<const Tokenizer> load(const std::string& path);
  ~Tokenizer();

  std::vector<int32_t> encode(std::string_view text) const;
  // Token count of `text`. Texts over 32 KB are encoded in whitespace-aligned segments of ~16 KB (cut points
  // depend on the text only) on several threads when the model is whitespace-separable; this equals the sum
  // of per-word encodings (tests), and avoids SentencePiece's float-precision drift on multi-MB single calls.
  int64_t count(std::string_view text) const;
  // The ids whose size count() returns (same segmentation).
  std::vector<int32_t> encode_long(std::string_view text) const;

  // What ONE SentencePiece encode call of the whole text returns (its size = the count a user or a serving
  // engine gets), including the drift of SentencePiece's float32 Viterbi scores over long texts, which makes a
  // one-call count differ from the sum of per-word counts by tens of tokens at 1M. For unigram models with an
  // identity normaliser and byte fallback (lctx-8k, most Llama-style unigram models) the call is reproduced
  // word by word with the same float arithmetic and cached per-word lattices (fast, exact, tested against
  // SentencePiece); BPE models have no such drift (their merges never cross a space) and use encode_long();
  // other models are encoded in one real call. ids: filled when not null. offsets: sorted byte offsets into
  // text; *tokens_at receives, for each, the index of the token that covers it (the count when past the end).
  int64_t count_one_call(std::string_view text, std::vector<int32_t>* ids = nullptr,
                         const std::vector<int64_t>* offsets = nullptr, std::vector<int64_t>* tokens_at = nullptr) const;
  // Whether count_one_call reproduces SentencePiece's call instead of making it.
  bool one_call_simulated() const { return sim_ != nullptr; }
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string piece(int32_t id) const;

  int32_t vocab_size() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t unk_id() const;
  int32_t pad_id() const;  // -1 if the model has none
  const std::string& path() const { return path_; }
  // 16 hex digits identifying the model file bytes; stored in samples and checkpoints.
  const std::string& hash() const { return hash_; }
  // True when "a b" encodes as encode("a") + encode("b") at every single-space boundary (split_by_whitespace
  // with a dummy prefix): lets long texts be counted in parallel pieces.
  bool whitespace_separable() const { return separable_; }

 private:
  Tokenizer() = default;
  void init_one_call(const std::string& model_bytes);
  friend class OneCallCounter;
  void* sp_ = nullptr;  // handle of the SentencePiece shim (tasks/spm_shim), loaded with dlopen
  std::string path_, hash_;
  bool separable_ = false;
  bool bpe_ = false;
  struct Sim;
  struct OneCall;                   // per-thread word records and the replayed Viterbi (tokenizer.cpp)
  std::shared_ptr<const Sim> sim_;  // the unigram model's pieces and scores, when the call can be reproduced
};

// count_one_call fed piece by piece: a text is appended with text() (any bytes), words() (whole words, each
// followed by a space, at a word start) and repeat() (a unit of text k times, with the repetitions' effect on
// the replayed Viterbi composed instead of stepped); finish() returns what count_one_call of the whole text
// returns, and mark_token() the token covering each marked byte. Only for tokenizers whose call is replayed
// (active()); words are interned per thread, and their ids stay valid while a counter lives on that thread
// (generation() changes when the thread's word records are dropped).
class OneCallCounter {
 public:
  explicit OneCallCounter(const Tokenizer& tok);
  ~OneCallCounter();
  OneCallCounter(const OneCallCounter&) = delete;
  OneCallCounter& operator=(const OneCallCounter&) = delete;
  bool active() const { return oc_ != nullptr; }
  uint64_t generation() const;
  uint32_t intern(std::string_view word);  // a word: bytes between two spaces
  // count_one_call of the interned word alone (== encode(word).size(), the word's per-chunk count).
  int64_t alone(uint32_t id);
  void text(std::string_view s);
  void words(const uint32_t* ids, size_t n);
  void repeat(std::string_view unit, int64_t k);
  // The one-call ids of a unit's words between its first and last space, kept by the caller for repeat() of
  // the same unit (valid for one generation()).
  struct RepeatIds {
    uint64_t gen = 0;
    std::string unit;
    std::vector<uint32_t> mid;
  };
  void repeat(std::string_view unit, int64_t k, RepeatIds* cache);
  void space_word(uint32_t id, std::string_view w);  // text(" ") then text(w), w's id known (w: no spaces)
  // space_word(ids[i], w_i) for i in [0, n), where only the last word's text w_{n-1} is needed: the words
  // before it are stepped by id in one loop (words()).
  void space_words(const uint32_t* ids, size_t n, std::string_view last);
  size_t mark(int64_t offset);  // offsets: nondecreasing, at or after every byte appended so far
  int64_t finish();
  int64_t mark_token(size_t m) const { return mark_tok_[m]; }
  bool at_word_start() const { return pending_.empty(); }
  // The state between two words: every word before text offset pos stepped, nothing pending.
  struct Checkpoint {
    int64_t pos;
    float S;
    int64_t count;
  };
  // While t is not null, the state after every word stepped is appended to *t.
  void trace(std::vector<Checkpoint>* t) { trace_ = t; }
  // A fresh counter (nothing appended, no marks) continues from a checkpoint of another counter's text: what
  // follows is appended at offset c.pos of that text.
  void resume(const Checkpoint& c);
  int64_t count() const { return count_; }  // tokens of the words stepped so far
  // Precomputes every interned word's outcome in each binade of running scores up to max_abs_score (what
  // stepping words there would compute on first sight; same counts).
  void prepare(double max_abs_score);
  // Once more than `limit` tokens are counted, nothing more is stepped: finish() then returns a count over the
  // limit but below the text's (and marks past that point are wrong); stopped() says so.
  void stop_after(int64_t limit) { limit_ = limit; }
  bool stopped() const { return stopped_; }

 private:
  void step(uint32_t id);
  bool fast_step(uint32_t id);
  Tokenizer::OneCall* oc_ = nullptr;
  float S_ = 0;
  int64_t count_ = 0, pos_ = 0;  // pos_: text offset of the pending word
  std::string pending_;
  uint32_t pending_id_ = UINT32_MAX;  // the id of pending_ when it was set whole by space_word
  bool any_ = false, finished_ = false;
  std::vector<int64_t> mark_off_, mark_tok_;
  size_t open_ = 0;
  std::vector<Checkpoint>* trace_ = nullptr;
  int64_t limit_ = INT64_MAX;
  bool stopped_ = false;
};

}  // namespace lctx
