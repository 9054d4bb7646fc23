// Internal header of the native RULER generators (tasks/ruler/*.cpp). Not a public contract.
//
// Token accounting. A prompt is assembled by PromptBuilder, which splits the text it is given into
// "chunks" at every single space that has a non-whitespace character on both sides (the same cut rule as
// Tokenizer::count's long-text segmentation). For a whitespace-separable SentencePiece model (the default
// tokenizer and most Llama-style models, probed by Tokenizer::whitespace_separable) the encoding of the whole
// prompt is the concatenation of the encodings of its chunks, so the builder knows the exact token count and
// the token offset of any character without ever encoding the whole prompt: corpus words come with cached
// ids, repeated filler lines are encoded once, other chunks go through a per-sample memo. A model that is not
// separable falls back to encoding the whole text (exact, but RULER-slow).
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "tasks/catalog.hpp"
#include "tasks/sample.hpp"

namespace lctx::ruler {

inline bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// Token ids of chunks, encoded once per distinct chunk text.
class ChunkMemo {
 public:
  explicit ChunkMemo(const Tokenizer& tok) : tok_(tok) {}
  // A memo that lives with the calling thread, so that samples share the encodings of recurring chunks
  // (template words, list numbers, documents). Emptied when it grows past a few million entries; call it at
  // the start of a sample only (it never changes what get() returns, only how fast).
  static ChunkMemo& local(const Tokenizer& tok);
  const std::vector<int32_t>& get(std::string_view chunk);
  const Tokenizer& tokenizer() const { return tok_; }

 private:
  const Tokenizer* tok_ptr() const { return &tok_; }
  const Tokenizer& tok_;
  std::deque<std::string> keys_;
  std::unordered_map<std::string_view, std::vector<int32_t>> map_;
};

// A piece of literal text pre-split at its first and last cut, so that appending it costs two chunk look-ups
// however long it is: head (before the first cut), mid (whole chunks, ids precomputed), tail (after the last).
struct Line {
  std::string text;
  bool has_cut = false;
  std::string head, tail;
  std::string mid_text;            // chunks between the first and last cut, joined by their single spaces
  std::vector<int32_t> mid_ids;
  mutable std::vector<uint32_t> mid_words;  // one-call word ids of mid_text (OneCallCounter), on first use
  mutable uint64_t mid_words_gen = 0;       // the generation of the word records they belong to (0: none)
  mutable OneCallCounter::RepeatIds repeat_ids;  // PromptBuilder::repeat's unit (separator + text), one-call ids
  static Line make(std::string text, ChunkMemo& memo);
};

// When a PromptBuilder composes the one-call count: with_text, when it keeps the text and not the ids (and the
// tokenizer's call is replayed); always, also without the text (a count of the prompt only); never.
enum class OneCallMode { with_text, always, never };

class PromptBuilder {
 public:
  // keep_text: materialise the prompt text; keep_ids: materialise the token ids. Count-only otherwise.
  PromptBuilder(ChunkMemo& memo, bool keep_text, bool keep_ids, OneCallMode one_call = OneCallMode::with_text);

  void lit(std::string_view s);                              // any literal text
  void words(const Corpus& c, size_t a, size_t b);           // corpus words [a, b) joined by single spaces
  void line(const Line& l);                                  // == lit(l.text), fast
  void repeat(std::string_view sep, const Line& l, int64_t k);  // k times (sep + line), O(1) when counting
  size_t mark();                                             // a mark at the current end of the text
  // == lit(" "), then (mark: *mark = mark()), then lit(w), for a word w (no whitespace) after text that ends in
  // a non-space: the space is a cut, w a whole chunk of w_tokens tokens (and one-call word oc_id, when
  // one_call() is not null). Only when the tokenizer is whitespace-separable and ids are not kept.
  void cut_word(std::string_view w, int64_t w_tokens, uint32_t oc_id, size_t* mark = nullptr);
  // cut_word(w[i], w_tokens[i], oc_ids[i]) for i in [0, n), no marks: the text written in one pass, the
  // one-call count stepped in one loop (OneCallCounter::space_words).
  void cut_words(const std::string_view* w, const int32_t* w_tokens, const uint32_t* oc_ids, size_t n);
  // cut_words for a builder that keeps no text and has no open mark, from the words' sums: the tokens and the
  // bytes (each word with the space before it) of the words before the last, their one-call ids, the last word.
  void cut_words_counted(int64_t tokens_before_last, int64_t bytes_before_last, const uint32_t* oc_ids, size_t n,
                         std::string_view last, int64_t last_tokens);
  // The same for a builder that keeps the text but no ids and no one-call count: the caller has appended the
  // words to text() itself, each after a space.
  void cut_words_appended(int64_t tokens_before_last, int64_t bytes_before_last, std::string_view last,
                          int64_t last_tokens);
  OneCallCounter* one_call() { return oc_.get(); }
  void out_reserve(size_t extra) { if (keep_text_) out_.reserve(out_.size() + extra); }
  void finish();                                             // flush the last chunk

  int64_t tokens() const { return tokens_; }                 // after finish()
  // One-call accounting (Tokenizer::count_one_call of the whole text, composed while the text is written):
  // kept when the text is and the ids are not, for tokenizers whose call is replayed. -1 otherwise.
  int64_t one_call_tokens() const;
  int64_t mark_one_call_token(size_t m) const;  // token covering the marked byte in the one-call encoding
  // (per-chunk tokens, one-call tokens) of prefixes of the text, every few thousand corpus words (words()):
  // how the one-call count drifts from the per-chunk count along this text.
  const std::vector<std::pair<int64_t, int64_t>>& one_call_curve() const { return curve_; }
  // Builders made on this thread from now on stop the one-call count once it passes `limit` (a prompt that
  // long is rejected whatever its exact count); INT64_MAX: never.
  static void one_call_limit(int64_t limit);
  bool one_call_stopped() const { return oc_ && oc_->stopped(); }
  int64_t bytes() const { return bytes_; }
  int64_t mark_token(size_t m) const { return marks_[m].token; }  // token containing the marked character
  int64_t mark_char(size_t m) const { return marks_[m].offset; }
  size_t num_marks() const { return marks_.size(); }
  std::string& text() { return out_; }
  std::vector<int32_t>& ids() { return ids_; }

 private:
  struct Mark {
    int64_t offset;
    int64_t token = -1;
  };
  void emit(std::string_view chunk, int64_t start);
  void flush_at_cut();  // the pending chunk ends at a cut that follows immediately
  void emit_pending();  // emit(pend_, pend_start_), with the known count of a cut_word chunk
  // After emit_pending: words of tokens_before_last tokens and bytes_before_last bytes (each with the space
  // before it) are counted, and `last` (last_tokens tokens, after one space) becomes the pending chunk.
  void pass_words(int64_t tokens_before_last, int64_t bytes_before_last, std::string_view last, int64_t last_tokens);
  void resolve(std::string_view chunk, int64_t start, int64_t first_token, const std::vector<int32_t>& ids);
  // Words [a, b), each followed by a space; tok_base: the per-chunk tokens of the text before word a.
  void oc_corpus_words(const Corpus& c, size_t a, size_t b, int64_t tok_base);

  ChunkMemo& memo_;
  const Tokenizer& tok_;
  bool keep_text_, keep_ids_, separable_;
  std::string out_, pend_;
  int64_t pend_known_ = -1;  // tokens of pend_ when cut_word set it (a whole chunk), else -1
  int64_t pend_start_ = 0, bytes_ = 0, tokens_ = 0;
  std::vector<int32_t> ids_;
  std::vector<Mark> marks_;
  size_t first_open_mark_ = 0;
  bool finished_ = false;
  std::unique_ptr<OneCallCounter> oc_;
  std::vector<std::pair<int64_t, int64_t>> curve_;
  size_t curve_words_ = 0;  // corpus words stepped since the last curve point
};

// A spare prompt buffer per thread: a rejected build's text is handed back, and the next builder that keeps
// its text writes into it (its capacity kept), instead of faulting in fresh pages for every build.
std::string take_text_buffer();
void give_text_buffer(std::string&& s);

// Largest n in [0, n_max] with T(n) <= budget, for a T that is (nearly) nondecreasing; T(0) must fit, else
// the caller's length is impossible (returns -1). guess: a first estimate of n.
int64_t fit_units(const std::function<int64_t(int64_t)>& T, int64_t budget, int64_t guess, int64_t n_max);

// Prompt templates (tasks/templates/ruler.json or --templates FILE).
struct Templates {
  std::string id;
  nlohmann::json j;
  static std::shared_ptr<const Templates> load(const std::string& file);  // "" = built-in
  // Parses and checks a template file's text (`path` names it in errors): every field present, each with
  // the placeholders its generator fills and no others. Throws Error.
  static std::shared_ptr<const Templates> parse(const std::string& body, const std::string& path);
  std::string str(const std::string& task, const std::string& field) const;  // throws Error if missing
  std::vector<std::string> noise_sentences() const;
};
// "{name}" substitution.
std::string fill(std::string s, const std::vector<std::pair<std::string, std::string>>& kv);

// Shared state of all RULER generators.
struct Ctx {
  Resources res;
  GenOptions opts;
  std::shared_ptr<const Templates> tpl;
};

// Base class: a task fills `Built` from (length, index, depth); the base turns it into a Sample (exact token
// count, verification, metadata) and writes RULER records.
struct Built {
  std::string input, answer_prefix;
  std::vector<std::string> outputs;
  int64_t prompt_tokens = 0;
  int64_t one_call_tokens = -1;  // the one-call count of input + answer_prefix when the builder composed it
  bool one_call_stopped = false;  // the count was stopped past the limit (PromptBuilder::one_call_limit)
  std::vector<std::pair<int64_t, int64_t>> one_call_marks;  // (byte offset, one-call token) of every mark
  std::vector<std::pair<int64_t, int64_t>> one_call_curve;  // PromptBuilder::one_call_curve of the prompt
  // Set by generators that can shorten the prompt they built without building it again: makes the prompt's
  // one-call count land in [lo, hi] by dropping haystack units at its end, and returns the new count; b is
  // unchanged and it returns -1 when the cut would have to be longer than it can make, -2 when no cut lands.
  std::function<int64_t(Built& b, int64_t lo, int64_t hi)> trim;
  // No text: the prompt's one-call count (one_call_tokens; prompt_tokens: its per-chunk count) lies outside the
  // window generate() accepts (accept_window), so the build stopped at the count.
  bool count_only = false;
  std::vector<int32_t> ids;
  std::vector<double> depths;                 // percent, one per needle/golden item (empty if none)
  std::vector<int64_t> needle_tokens, needle_chars;  // token/char offset of each needle in the prompt
  int64_t answer_token = -1;                  // token offset of the first answer in the prompt
  int64_t answer_char = -1;                   // its byte offset (-1: none)
  std::string haystack;                       // "essay" | "noise" | "needle" | "words" | "documents"
  nlohmann::json extra = nlohmann::json::object();
};

class RulerTask : public TaskGenerator {
 public:
  // Name, answer budget, shortest length, metric, template section and slack come from the catalogue row.
  RulerTask(std::shared_ptr<const Ctx> ctx, const TaskInfo& info)
      : ctx_(std::move(ctx)), info_(info), name_(info.name), ttg_(info.tokens_to_generate),
        min_len_(info.min_length), metric_(info.metric), section_(info.params.at("template").get<std::string>()),
        slack_(info.params.value("slack", int64_t(32))) {}
  std::string suite() const override { return "ruler"; }
  std::string name() const override { return name_; }
  int64_t min_length() const override { return min_len_; }
  bool supports_depth() const override { return info_.depth; }
  Sample generate(int64_t length, int64_t index, std::optional<double> depth = std::nullopt) const override;
  nlohmann::json record(const Sample& s) const override;

 protected:
  // budget = length - tokens_to_generate. Must return a prompt of at most `budget` tokens.
  virtual Built build(int64_t budget, Rng& rng, std::optional<double> depth, int64_t index) const = 0;
  // Whether build() sets Built::trim (then no calibration build is made, see first_target).
  virtual bool cuts_haystack() const { return false; }
  // The task's string `field` of its section of the prompt templates.
  std::string tpl(const std::string& field) const { return ctx_->tpl->str(section_, field); }
  std::shared_ptr<const Ctx> ctx_;
  const TaskInfo& info_;
  std::string name_;
  int ttg_;
  int64_t min_len_;
  std::string metric_, section_;
  int64_t slack_;

 private:
  // The first build target for `length` (the budget unless calibrated, see generate()).
  int64_t first_target(int64_t length, int64_t budget) const;
  mutable std::mutex calib_mu_;
  mutable std::map<int64_t, int64_t> calib_;  // length -> first target
};

// The one-call counts generate() accepts for the build under way, [lo, hi], set around build() where a prompt
// outside them is rejected whatever it holds (not while calibrating or falling back); lo > hi: none.
void set_accept_window(int64_t lo, int64_t hi);
// Whether a window is set and the count lies outside it (a build may then return Built::count_only).
bool outside_accept_window(int64_t one_call_count);
bool accept_window_set();

// Builder for a task's prompt parts: instruction + context + question, answer prefix.
// Finishes `b` from a builder that holds the whole prompt (input followed by answer_prefix).
void finish_built(Built& b, PromptBuilder& pb, size_t input_end_bytes, bool keep_ids);

// Ends a list task's prompt (the input is all written): the answer prefix follows; `mark` (the answer list's
// mark) becomes the sample's single needle position; n haystack units.
void finish_marked(Built& b, PromptBuilder& pb, size_t mark, const std::string& ap, int64_t n, bool keep_ids);

// The final build of a list task (cwe, fwe): assemble(pb, n, &mark) writes the prompt and marks the answer
// list; the answer prefix follows; the mark becomes the sample's single needle position.
template <class Assemble>
void build_marked(Built& b, ChunkMemo& memo, bool keep_ids, const Assemble& assemble, int64_t n,
                  const std::string& ap) {
  PromptBuilder pb(memo, true, keep_ids);
  size_t mark = SIZE_MAX;
  assemble(pb, n, &mark);
  finish_marked(b, pb, mark, ap, n, keep_ids);
}

// The token count of the prompt that assemble(pb, n, nullptr) builds, followed by the answer prefix `ap`
// (counting only: no text is kept). The fitting searches (fit_units) call it with candidate unit counts.
template <class Assemble>
auto prompt_counter(ChunkMemo& memo, const Assemble& assemble, const std::string& ap) {
  return [&memo, &assemble, &ap](int64_t n) {
    PromptBuilder pb(memo, false, false);
    assemble(pb, n, nullptr);
    pb.lit(ap);
    pb.finish();
    return pb.tokens();
  };
}

// RULER's 40 evenly spaced depths: round(linspace(0, 100, 40)).
const std::vector<int>& depth_grid();

// Words for keys/vocabularies.
std::string random_word_key(Rng& rng, const WordLists& w);   // "adjective-noun"
std::string random_number7(Rng& rng);
std::string random_value(Rng& rng, const WordLists& w, const std::string& type);  // words | numbers | uuids

// Factories, one per generator family and source file; tasks/ruler/ruler.cpp maps catalogue families to them.
std::unique_ptr<TaskGenerator> make_niah(std::shared_ptr<const Ctx> ctx, const TaskInfo& info);
std::unique_ptr<TaskGenerator> make_niah_ids(std::shared_ptr<const Ctx> ctx, const TaskInfo& info);
std::unique_ptr<TaskGenerator> make_vt(std::shared_ptr<const Ctx> ctx, const TaskInfo& info);
std::unique_ptr<TaskGenerator> make_cwe(std::shared_ptr<const Ctx> ctx, const TaskInfo& info);
std::unique_ptr<TaskGenerator> make_fwe(std::shared_ptr<const Ctx> ctx, const TaskInfo& info);
std::unique_ptr<TaskGenerator> make_qa(std::shared_ptr<const Ctx> ctx, const TaskInfo& info);

// Thrown by build() when even the smallest prompt does not fit the budget; generate() turns it into an
// "impossible length" Error.
struct TooShort {};
}  // namespace lctx::ruler
