// Common words extraction (RULER cwe): a numbered list "1. word 2. word ..." in which 10 common words occur
// 30 times each and every other word 3 times, after one worked example. Answer: the 10 common words.
#include <algorithm>
#include <numeric>
#include <set>

#include "core/rng.hpp"
#include "tasks/ruler/ruler.hpp"

namespace lctx::ruler {
namespace {

constexpr int kNumCw = 10, kFreqCw = 30, kFreqUcw = 3;

// Words in a seeded random order, drawn lazily; past the end of the pool, hyphenated pairs of pool words.
class WordStream {
 public:
  WordStream(const std::vector<std::string>& pool, Rng& rng) : pool_(pool), rng_(rng), perm_(pool.size()) {
    std::iota(perm_.begin(), perm_.end(), 0u);
  }
  std::string at(size_t i) {
    const size_t N = pool_.size();
    draw(std::min(i + 1, N));
    if (i < N) return pool_[perm_[i]];
    size_t k = i - N, a = k % N, b = (k / N + a + 1) % N;
    return pool_[perm_[a]] + "-" + pool_[perm_[b]];
  }

 private:
  void draw(size_t upto) {
    for (; done_ < upto; ++done_) std::swap(perm_[done_], perm_[done_ + rng_.below(perm_.size() - done_)]);
  }
  const std::vector<std::string>& pool_;
  Rng& rng_;
  std::vector<uint32_t> perm_;
  size_t done_ = 0;
};

class Cwe : public RulerTask {
 public:
  Cwe(std::shared_ptr<const Ctx> ctx, const TaskInfo& info) : RulerTask(std::move(ctx), info) {
    const WordLists& W = *ctx_->res.words;
    std::set<std::string> s(W.nouns.begin(), W.nouns.end());
    s.insert(W.adjectives.begin(), W.adjectives.end());
    s.insert(W.verbs.begin(), W.verbs.end());
    for (auto& w : s)
      if (w.find('-') == std::string::npos) pool_.push_back(w);
  }

 protected:
  Built build(int64_t budget, Rng& rng, std::optional<double>, int64_t) const override {
    // RULER: from 4K on, a 40-word example (10 common x 10, others x 3) and 30 / 3 repeats; below 4K a
    // 20-word example (x 3 / x 1) and 6 / 1 repeats. When the large setting does not fit (tokenizers that
    // split numbers into digits make the numbered list long), the small one is used.
    if (budget + ttg_ >= 4096) {
      Rng copy = rng;
      try {
        return build_with(budget, copy, Setting{40, 10, 3, kFreqCw, kFreqUcw});
      } catch (const TooShort&) {
      }
    }
    return build_with(budget, rng, Setting{20, 3, 1, 6, 1});
  }

 private:
  struct Setting {
    int ex_words, ex_cw, ex_ucw, freq_cw, freq_ucw;
  };
  Built build_with(int64_t budget, Rng& rng, Setting st) const {
    const bool keep_ids = ctx_->opts.keep_ids;
    ChunkMemo& memo = ChunkMemo::local(*ctx_->res.tokenizer);
    Rng wrng(rng.next());
    WordStream ws(pool_, wrng);
    const int ex_words = st.ex_words, ex_cw = st.ex_cw, ex_ucw = st.ex_ucw;
    size_t next = 0;
    std::vector<std::string> ex_list, ex_common;
    for (int i = 0; i < ex_words; ++i) {
      std::string w = ws.at(next++);
      if (i < kNumCw) ex_common.push_back(w);
      for (int r = 0; r < (i < kNumCw ? ex_cw : ex_ucw); ++r) ex_list.push_back(w);
    }
    rng.shuffle(ex_list);
    std::vector<std::string> common;
    for (int i = 0; i < kNumCw; ++i) common.push_back(ws.at(next++));
    const size_t first_ucw = next;
    const uint64_t shuffle_seed = rng.next();

    const std::string ncw = std::to_string(kNumCw);
    const std::string pre = fill(tpl("instruction"), {{"num_cw", ncw}});
    const std::string q = fill(tpl("question"), {{"num_cw", ncw}});
    const std::string ap = fill(tpl("answer_prefix"), {{"num_cw", ncw}});
    auto numbered = [](PromptBuilder& pb, const std::vector<std::string>& list, const std::string* mark_word,
                       size_t* mark) {
      for (size_t i = 0; i < list.size(); ++i) {
        pb.lit((i ? " " : "") + std::to_string(i + 1) + ". ");
        if (mark_word && *mark == SIZE_MAX && list[i] == *mark_word) *mark = pb.mark();
        pb.lit(list[i]);
      }
    };
    std::vector<std::string> ucw;  // uncommon words drawn so far
    auto list_for = [&](int64_t n) {
      while (static_cast<int64_t>(ucw.size()) < n) ucw.push_back(ws.at(first_ucw + ucw.size()));
      std::vector<std::string> list;
      list.reserve(kNumCw * st.freq_cw + n * st.freq_ucw);
      for (auto& w : common)
        for (int r = 0; r < st.freq_cw; ++r) list.push_back(w);
      for (int64_t i = 0; i < n; ++i)
        for (int r = 0; r < st.freq_ucw; ++r) list.push_back(ucw[i]);
      Rng sr(shuffle_seed);
      sr.shuffle(list);
      return list;
    };
    auto assemble = [&](PromptBuilder& pb, int64_t n, size_t* mark) {
      pb.lit(pre);
      numbered(pb, ex_list, nullptr, nullptr);
      pb.lit(q);
      pb.lit(ap);
      pb.lit(" ");
      numbered(pb, ex_common, nullptr, nullptr);
      pb.lit(tpl("example_separator"));
      pb.lit(pre);
      numbered(pb, list_for(n), mark ? &common[0] : nullptr, mark);
      pb.lit(q);
    };
    auto count = prompt_counter(memo, assemble, ap);
    int64_t n = fit_units(count, budget, std::max<int64_t>(0, (budget - 2000) / (5 * st.freq_ucw)), budget / st.freq_ucw);
    if (n < 0) throw TooShort{};

    Built b;
    b.haystack = "words";
    b.outputs = common;
    build_marked(b, memo, keep_ids, assemble, n, ap);
    b.extra["list_items"] = kNumCw * st.freq_cw + n * st.freq_ucw;
    b.extra["repeats"] = {st.freq_cw, st.freq_ucw};
    b.extra["example_words"] = st.ex_words;
    return b;
  }

  std::vector<std::string> pool_;
};

}  // namespace

std::unique_ptr<TaskGenerator> make_cwe(std::shared_ptr<const Ctx> ctx, const TaskInfo& info) {
  return std::make_unique<Cwe>(std::move(ctx), info);
}

}  // namespace lctx::ruler
