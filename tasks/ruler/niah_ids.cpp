// The niah_ids family: the single-needle variant of the HSA authors' own RULER synthesizer (docs/ruler.md): one
// needle sentence, delimited by "|", carries a code of 7 random vocabulary tokens and sits at a uniformly
// random depth (or the requested one) in real prose (the haystack corpus); the question asks for the code.
// The reference is the code's text, and its tokens are exactly the 7 drawn ids: they are drawn from the
// tokenizer's whole-word pieces that encode to themselves, so prompt, reference and teacher-forced answer
// agree token for token.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "tasks/ruler/ruler.hpp"

namespace lctx::ruler {
namespace {

constexpr int kCodeTokens = 7;

// The wording (this generator's own; it is not in the templates file, whose tasks are NVIDIA RULER's).
const char* kInstruction = "A secret code of seven words is hidden somewhere in the following text. Find it and memorize it.\n";
const char* kNeedlePre = "| The secret code for this long text is ";
const char* kNeedlePost = " |";
const char* kQuestion = "\nWhat is the secret code for this long text?";
const char* kAnswerPrefix = " The secret code for this long text is";

// Token ids usable in a code: pieces "▁" + 3..12 lowercase ASCII letters whose text, encoded alone, is that
// one piece. Sorted ids; one pool per tokenizer (keyed by its hash).
const std::vector<int32_t>& code_pool(const Tokenizer& tok) {
  static std::mutex mu;
  static std::map<std::string, std::vector<int32_t>> pools;
  std::lock_guard<std::mutex> lock(mu);
  auto it = pools.find(tok.hash());
  if (it != pools.end()) return it->second;
  std::vector<int32_t> pool;
  const std::string lead = "\xe2\x96\x81";  // U+2581, SentencePiece's word-start mark
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    const std::string p = tok.piece(id);
    if (p.size() < lead.size() + 3 || p.size() > lead.size() + 12 || p.compare(0, lead.size(), lead) != 0) continue;
    const std::string word = p.substr(lead.size());
    if (!std::all_of(word.begin(), word.end(), [](char c) { return c >= 'a' && c <= 'z'; })) continue;
    const auto ids = tok.encode(word);
    if (ids.size() == 1 && ids[0] == id) pool.push_back(id);
  }
  if (pool.size() < 64) throw Error("ruler: the tokenizer has too few whole-word pieces for secret codes");
  return pools.emplace(tok.hash(), std::move(pool)).first->second;
}

class NiahIds : public RulerTask {
 public:
  NiahIds(std::shared_ptr<const Ctx> ctx, const TaskInfo& info)
      : RulerTask(std::move(ctx), info), pool_(code_pool(*ctx_->res.tokenizer)) {}

 protected:
  Built build(int64_t budget, Rng& rng, std::optional<double> depth, int64_t) const override;

 private:
  const std::vector<int32_t>& pool_;
};

Built NiahIds::build(int64_t budget, Rng& rng, std::optional<double> depth, int64_t) const {
  const Tokenizer& tok = *ctx_->res.tokenizer;
  const Corpus& C = *ctx_->res.corpus;
  ChunkMemo& memo = ChunkMemo::local(tok);

  // The code: 7 distinct pool ids, in draw order.
  std::vector<int32_t> code;
  for (size_t i : rng.sample_indices(pool_.size(), kCodeTokens)) code.push_back(pool_[i]);
  std::string value;
  for (int32_t id : code) value += (value.empty() ? "" : " ") + tok.piece(id).substr(3);
  const double d = depth ? *depth : 100.0 * rng.uniform();
  const std::string needle = std::string(kNeedlePre) + value + kNeedlePost;

  // Haystack: n corpus words from a random sentence start (wrapping around the corpus); the needle goes
  // at the first sentence start at or after n * d / 100 words.
  const size_t W0 = C.num_words();
  const size_t w0 = C.sentence_begin(rng.below(C.num_sentences()));
  auto snap = [&C, W0, w0](int64_t t, int64_t n) -> int64_t {
    if (t >= n) return n;
    const size_t idx = (w0 + static_cast<size_t>(t)) % W0;
    size_t lo = 0, hi = C.num_sentences();  // first sentence with begin >= idx
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      if (C.sentence_begin(mid) < idx) lo = mid + 1; else hi = mid;
    }
    const size_t sb = lo < C.num_sentences() ? C.sentence_begin(lo) : W0;
    return std::min<int64_t>(n, t + static_cast<int64_t>(sb - idx));
  };
  auto hay = [&C, W0, w0](PromptBuilder& pb, int64_t a, int64_t b, bool& sep) {
    while (a < b) {
      const size_t cw = (w0 + static_cast<size_t>(a)) % W0;
      const int64_t len = std::min<int64_t>(b - a, static_cast<int64_t>(W0 - cw));
      if (sep) pb.lit(" ");
      pb.words(C, cw, cw + static_cast<size_t>(len));
      sep = true;
      a += len;
    }
  };
  struct Marks {
    size_t needle = 0, answer = 0;
  };
  auto assemble = [&](PromptBuilder& pb, int64_t n, Marks* mk) {
    pb.lit(kInstruction);
    bool sep = false;
    const int64_t at = snap(std::min<int64_t>(n, static_cast<int64_t>(std::floor(double(n) * d / 100.0))), n);
    hay(pb, 0, at, sep);
    if (sep) pb.lit(" ");
    if (mk) mk->needle = pb.mark();
    pb.lit(kNeedlePre);
    if (mk) mk->answer = pb.mark();
    pb.lit(value);
    pb.lit(kNeedlePost);
    sep = true;
    hay(pb, at, n, sep);
    pb.lit(kQuestion);
  };
  const std::string ap = kAnswerPrefix;
  auto count = prompt_counter(memo, assemble, ap);
  const double per_word = double(C.num_tokens()) / double(C.num_words());
  const int64_t n = fit_units(count, budget, static_cast<int64_t>(double(budget - 80) / per_word), budget);
  if (n < 0) throw TooShort{};

  Built b;
  b.outputs = {value};
  b.haystack = "essay";
  b.depths = {d};
  PromptBuilder pb(memo, true, ctx_->opts.keep_ids);
  Marks mk;
  assemble(pb, n, &mk);
  const size_t input_end = static_cast<size_t>(pb.bytes());
  pb.lit(ap);
  finish_built(b, pb, input_end, ctx_->opts.keep_ids);
  b.needle_tokens.push_back(pb.mark_token(mk.needle));
  b.needle_chars.push_back(pb.mark_char(mk.needle));
  b.answer_token = pb.mark_token(mk.answer);
  b.extra["answer_char_offset"] = pb.mark_char(mk.answer);
  b.extra["answer_ids"] = code;
  b.extra["haystack_units"] = n;
  return b;
}

}  // namespace

std::unique_ptr<TaskGenerator> make_niah_ids(std::shared_ptr<const Ctx> ctx, const TaskInfo& info) {
  if (!ctx->res.corpus) throw Error("ruler " + info.name + ": no haystack corpus loaded");
  return std::make_unique<NiahIds>(std::move(ctx), info);
}

}  // namespace lctx::ruler
