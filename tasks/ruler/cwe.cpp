// Common words extraction (RULER cwe): a numbered list "1. word 2. word ..." in which 10 common words occur
// 30 times each and every other word 3 times, after one worked example. Answer: the 10 common words.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <deque>
#include <functional>
#include <unordered_map>
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
  // The pool index of word i (SIZE_MAX past the end of the pool, where words are pairs).
  size_t pool_index(size_t i) {
    if (i >= pool_.size()) return SIZE_MAX;
    draw(i + 1);
    return perm_[i];
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

// Per-thread token counts and one-call word ids of list numbers ("12.") and pool words, kept across samples.
struct ListCache {
  const void* owner = nullptr;
  const Tokenizer* tok = nullptr;
  uint64_t oc_gen = 0;
  std::vector<int32_t> pool_tokens;      // -1: not yet counted
  std::vector<uint32_t> pool_oc;         // UINT32_MAX: not yet interned
  std::vector<std::string> nums;         // nums[i] = "i." (nums[0] unused)
  std::vector<int64_t> num_prefix;       // sum of the tokens of nums[1..i]
  std::vector<uint32_t> num_oc;
  static ListCache& local(const void* owner, const Tokenizer& tok, size_t pool) {
    thread_local ListCache c;
    if (c.owner != owner || c.tok != &tok) {
      c = ListCache();
      c.owner = owner;
      c.tok = &tok;
      c.pool_tokens.assign(pool, -1);
      c.pool_oc.assign(pool, UINT32_MAX);
      c.nums.emplace_back();
      c.num_prefix.push_back(0);
      c.num_oc.push_back(UINT32_MAX);
    }
    return c;
  }
  void numbers(size_t n, ChunkMemo& memo) {  // nums up to n
    while (nums.size() <= n) {
      nums.push_back(std::to_string(nums.size()) + ".");
      num_prefix.push_back(num_prefix.back() + static_cast<int64_t>(memo.get(nums.back()).size()));
      num_oc.push_back(UINT32_MAX);
    }
  }
  bool all_interned = false;  // every pool word has its one-call id (pool_oc) of generation oc_gen
  int64_t prepared_for = 0;   // their binade outcomes are precomputed for prompts up to this budget
  void one_call_generation(uint64_t g) {
    if (g == oc_gen) return;
    oc_gen = g;
    all_interned = false;
    prepared_for = 0;
    std::fill(pool_oc.begin(), pool_oc.end(), UINT32_MAX);
    std::fill(num_oc.begin(), num_oc.end(), UINT32_MAX);
  }
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
    plain_ = std::all_of(pool_.begin(), pool_.end(), [](const std::string& w) {
      return !w.empty() && std::none_of(w.begin(), w.end(), [](char c) { return is_ws(c); });
    });
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
    // Everything before the list: the worked example, then the instruction again.
    auto head = [&](PromptBuilder& pb) {
      pb.lit(pre);
      numbered(pb, ex_list, nullptr, nullptr);
      pb.lit(q);
      pb.lit(ap);
      pb.lit(" ");
      numbered(pb, ex_common, nullptr, nullptr);
      pb.lit(tpl("example_separator"));
      pb.lit(pre);
    };
    auto assemble = [&](PromptBuilder& pb, int64_t n, size_t* mark) {
      head(pb);
      numbered(pb, list_for(n), mark ? &common[0] : nullptr, mark);
      pb.lit(q);
    };
    // The list's per-chunk count in O(1) (tokenizers that encode "a b" as "a" then "b", words without
    // whitespace): in "...\n1. w1 2. w2 ... N. wN" + question, every number from "2." on and every word but
    // the last is a chunk of its own; "1." joins the text before it and wN the question after it, so
    // T(n) = T(the same prompt with the one-item list [wN]) + tokens("2." .. "N.") + tokens(all words) - tokens(wN).
    // wN is the word the shuffle's first draw puts last (Rng::shuffle swaps from the back).
    const bool fast = plain_ && ctx_->res.tokenizer->whitespace_separable() && !keep_ids;
    ListCache* lc = fast ? &ListCache::local(this, *ctx_->res.tokenizer, pool_.size()) : nullptr;
    struct Item {
      std::string_view text;
      int32_t tokens;
      size_t pool;  // SIZE_MAX: a pair word, text in `pairs`
      uint32_t oc = UINT32_MAX;
    };
    std::deque<std::string> pairs;
    std::vector<Item> items;  // common words 0..9, then the uncommon words in draw order
    std::vector<int64_t> ucw_prefix{0};
    // A word's per-chunk count is the one-call count of the word alone: from its one-call record (interned
    // anyway for the final build) where the call is replayed, which is much cheaper than an encode call.
    static const bool no_composed = std::getenv("LCTX_NO_COMPOSED_COUNT") != nullptr;
    std::unique_ptr<OneCallCounter> ioc;
    if (fast && ctx_->res.tokenizer->one_call_simulated() && !no_composed) {
      ioc = std::make_unique<OneCallCounter>(*ctx_->res.tokenizer);
      lc->one_call_generation(ioc->generation());
      // A list that takes a sizeable part of the pool (32K and up): every pool word's record at once, once per
      // thread, instead of a lattice for each word the first time a sample draws it.
      if (!lc->all_interned && budget / (5 * st.freq_ucw) >= static_cast<int64_t>(pool_.size() / 64)) {
        for (size_t pi = 0; pi < pool_.size(); ++pi) {
          if (lc->pool_oc[pi] == UINT32_MAX) lc->pool_oc[pi] = ioc->intern(pool_[pi]);
          if (lc->pool_tokens[pi] < 0) lc->pool_tokens[pi] = static_cast<int32_t>(ioc->alone(lc->pool_oc[pi]));
        }
        lc->all_interned = true;
      }
      // Their outcomes in every binade this prompt's running score passes through (about -8 per token).
      if (lc->all_interned && budget > lc->prepared_for) {
        ioc->prepare(12.0 * double(budget));
        lc->prepared_for = budget;
      }
    }
    auto item_of = [&](size_t stream_index) {
      size_t pi = ws.pool_index(stream_index);
      std::string_view t;
      if (pi == SIZE_MAX) {
        pairs.push_back(ws.at(stream_index));
        t = pairs.back();
      } else {
        t = pool_[pi];
      }
      int32_t k;
      uint32_t oc_id = UINT32_MAX;
      if (pi != SIZE_MAX && lc->pool_tokens[pi] >= 0) {
        k = lc->pool_tokens[pi];
      } else if (ioc) {
        oc_id = pi != SIZE_MAX ? lc->pool_oc[pi] : UINT32_MAX;
        if (oc_id == UINT32_MAX) oc_id = ioc->intern(t);
        if (pi != SIZE_MAX) lc->pool_oc[pi] = oc_id;
        k = static_cast<int32_t>(ioc->alone(oc_id));
        if (pi != SIZE_MAX) lc->pool_tokens[pi] = k;
      } else {
        k = static_cast<int32_t>(memo.get(t).size());
        if (pi != SIZE_MAX) lc->pool_tokens[pi] = k;
      }
      return Item{t, k, pi, oc_id};
    };
    int64_t common_tokens = 0;
    if (fast) {
      for (int i = 0; i < kNumCw; ++i) {
        items.push_back(item_of(first_ucw - kNumCw + i));
        common_tokens += items.back().tokens;
      }
    }
    auto grow_ucw = [&](int64_t n) {
      while (static_cast<int64_t>(items.size()) - kNumCw < n) {
        items.push_back(item_of(first_ucw + items.size() - kNumCw));
        ucw_prefix.push_back(ucw_prefix.back() + items.back().tokens);
      }
    };
    const int64_t n_common_items = int64_t(kNumCw) * st.freq_cw;
    auto last_slot = [&](int64_t N) {  // the item (index into items) that ends the shuffled list of N entries
      Rng sr(shuffle_seed);
      const int64_t r = static_cast<int64_t>(sr.below(static_cast<uint64_t>(N)));
      return r < n_common_items ? static_cast<size_t>(r / st.freq_cw)
                                : static_cast<size_t>(kNumCw + (r - n_common_items) / st.freq_ucw);
    };
    std::unordered_map<size_t, int64_t> one_item;  // item -> T of the prompt with the list [item]
    auto count_fast = [&](int64_t n) {
      grow_ucw(n);
      const int64_t N = n_common_items + n * st.freq_ucw;
      lc->numbers(static_cast<size_t>(N), memo);
      const size_t last = last_slot(N);
      auto it = one_item.find(last);
      if (it == one_item.end()) {
        PromptBuilder pb(memo, false, false);
        head(pb);
        pb.lit("1. ");
        pb.lit(items[last].text);
        pb.lit(q);
        pb.lit(ap);
        pb.finish();
        it = one_item.emplace(last, pb.tokens()).first;
      }
      return it->second + (lc->num_prefix[N] - lc->num_prefix[1]) + st.freq_cw * common_tokens +
             st.freq_ucw * ucw_prefix[n] - items[last].tokens;
    };
    auto count = prompt_counter(memo, assemble, ap);
    std::function<int64_t(int64_t)> T = count;
    if (fast) T = count_fast;
    int64_t n = fit_units(T, budget, std::max<int64_t>(0, (budget - 2000) / (5 * st.freq_ucw)), budget / st.freq_ucw);
    if (n < 0) throw TooShort{};

    if (fast) {
      // The final prompt, list words and numbers written as known chunks.
      Built b;
      b.haystack = "words";
      b.outputs = common;
      grow_ucw(n);
      const int64_t N = n_common_items + n * st.freq_ucw;
      lc->numbers(static_cast<size_t>(N), memo);
      std::vector<uint32_t> list;
      list.reserve(static_cast<size_t>(N));
      for (int c = 0; c < kNumCw; ++c)
        for (int r = 0; r < st.freq_cw; ++r) list.push_back(static_cast<uint32_t>(c));
      for (int64_t i = 0; i < n; ++i)
        for (int r = 0; r < st.freq_ucw; ++r) list.push_back(static_cast<uint32_t>(kNumCw + i));
      Rng sr(shuffle_seed);
      sr.shuffle(list);
      PromptBuilder pb(memo, true, false);
      OneCallCounter* oc = pb.one_call();
      if (oc) lc->one_call_generation(oc->generation());
      auto item_oc = [&](Item& it) {
        if (!oc) return UINT32_MAX;
        if (it.oc == UINT32_MAX) {
          if (it.pool != SIZE_MAX) {
            uint32_t& id = lc->pool_oc[it.pool];
            if (id == UINT32_MAX) id = oc->intern(it.text);
            it.oc = id;
          } else {
            it.oc = oc->intern(it.text);
          }
        }
        return it.oc;
      };
      auto num_oc = [&](size_t i) {
        if (!oc) return UINT32_MAX;
        uint32_t& id = lc->num_oc[i];
        if (id == UINT32_MAX) id = oc->intern(lc->nums[i]);
        return id;
      };
      head(pb);
      size_t mark = SIZE_MAX;
      pb.out_reserve(static_cast<size_t>(N) * 16);
      for (size_t i = 0; i < list.size(); ++i) {
        if (i == 0) {
          pb.lit("1.");
        } else {
          const int64_t k = lc->num_prefix[i + 1] - lc->num_prefix[i];
          pb.cut_word(lc->nums[i + 1], k, num_oc(i + 1));
        }
        Item& it = items[list[i]];
        pb.cut_word(it.text, it.tokens, item_oc(it), mark == SIZE_MAX && list[i] == 0 ? &mark : nullptr);
      }
      pb.lit(q);
      finish_marked(b, pb, mark, ap, n, false);
      b.extra["list_items"] = kNumCw * st.freq_cw + n * st.freq_ucw;
      b.extra["repeats"] = {st.freq_cw, st.freq_ucw};
      b.extra["example_words"] = st.ex_words;
      return b;
    }

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
  bool plain_ = false;  // every pool word is free of whitespace
};

}  // namespace

std::unique_ptr<TaskGenerator> make_cwe(std::shared_ptr<const Ctx> ctx, const TaskInfo& info) {
  return std::make_unique<Cwe>(std::move(ctx), info);
}

}  // namespace lctx::ruler
