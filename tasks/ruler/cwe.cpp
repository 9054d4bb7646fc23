// Common words extraction (RULER cwe): a numbered list "1. word 2. word ..." in which 10 common words occur
// 30 times each and every other word 3 times, after one worked example. Answer: the 10 common words.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <deque>
#include <functional>
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
  WordStream(const std::vector<std::string>& pool, Rng& rng) : pool_(pool), rng_(rng), perm_(identity(pool.size())) {}
  // The permutation goes back to the identity (only the drawn positions and their swap partners moved), so
  // the next stream on this thread starts from it instead of writing the whole pool's worth of indices.
  ~WordStream() {
    for (size_t k = done_; k-- > 0;) std::swap(perm_[k], perm_[partner_[k]]);
    spare() = std::move(perm_);
  }
  WordStream(const WordStream&) = delete;
  WordStream& operator=(const WordStream&) = delete;
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

 static std::vector<uint32_t>& spare() {
    thread_local std::vector<uint32_t> s;
    return s;
  }
 private:
  static std::vector<uint32_t> identity(size_t n) {
    std::vector<uint32_t> v = std::move(spare());
    spare().clear();
    if (v.size() != n) {
      v.resize(n);
      std::iota(v.begin(), v.end(), 0u);
    }
    return v;
  }
  void draw(size_t upto) {
    if (upto > partner_.capacity()) partner_.reserve(std::max(upto, 2 * partner_.capacity()));
    for (; done_ < upto; ++done_) {
      const size_t j = done_ + rng_.below(perm_.size() - done_);
      std::swap(perm_[done_], perm_[j]);
      partner_.push_back(static_cast<uint32_t>(j));
    }
  }
  const std::vector<std::string>& pool_;
  Rng& rng_;
  std::vector<uint32_t> perm_, partner_;  // partner_[k]: the position swapped with k by draw k
  size_t done_ = 0;
};

// A word's records for the list loops: one-call id, per-chunk tokens, bytes, and where its text starts in a
// buffer of texts (ListCache::num_text, Drawn::item_text) that ends in kPad bytes of padding, so that a word
// of up to kPad bytes can be copied as kPad bytes.
struct WordRec {
  uint32_t oc;
  int32_t tokens;
  uint32_t len, off;
};
constexpr size_t kPad = 16;
// reserve() for a container that grows by steps (the fit's candidate list sizes): at least doubling, so that
// the growth copies it a bounded number of times.
template <class V>
void grow_to(V& v, size_t n) {
  if (n > v.capacity()) v.reserve(std::max(n, 2 * v.capacity()));
}
// Appends t to a padded text buffer; returns its offset.
inline uint32_t append_padded(std::string& buf, std::string_view t) {
  if (buf.size() < kPad) buf.assign(kPad, '\0');
  buf.resize(buf.size() - kPad);
  const uint32_t off = static_cast<uint32_t>(buf.size());
  buf.append(t.data(), t.size());
  buf.append(kPad, '\0');
  return off;
}

// A list word: its text, per-chunk tokens, pool index and one-call id.
struct Item {
  std::string_view text;
  int32_t tokens;
  size_t pool;  // SIZE_MAX: a pair word, text in Drawn::pairs
  uint32_t oc = UINT32_MAX;
};

// The words one sample draws, kept on the thread across that sample's builds (generate() builds it again from
// the same seed for other list sizes): the stream, the items drawn with their records, and the counts of the
// list sizes built.
struct Drawn {
  uint64_t owner = 0;  // the generator's id (Cwe::id_)
  Rng key{0};          // the sample Rng's state when the build began
  int ex_words = -1;
  uint64_t oc_gen = 0;
  std::unique_ptr<Rng> wrng;
  std::unique_ptr<WordStream> ws;
  std::deque<std::string> pairs;
  std::vector<Item> items, ex_items;  // items: common words 0..9, then the uncommon words in draw order
  std::vector<int64_t> ucw_prefix{0};
  std::vector<WordRec> recs;           // recs[k]: items[k]'s (filled for the final builds)
  std::vector<uint32_t> rec_oc;        // rec_oc[k] = recs[k].oc (a compact copy for the counts)
  std::string item_text;               // their texts back to back (WordRec::off), padded
  std::vector<std::string_view> texts;  // texts[k]: items[k]'s in item_text
  uint32_t max_len = 0;                // the longest item
  struct Tried {
    int64_t n, tokens, one_call;
    bool stopped;
    std::vector<std::pair<int64_t, int64_t>> curve;
  };
  std::vector<Tried> tried;  // the one-call counts of the list sizes built
  static Drawn& local() {
    WordStream::spare();  // constructed first, destroyed after d (d's stream hands its permutation back there)
    thread_local Drawn d;
    return d;
  }
  // Keeps what it holds when it is the same generator, setting, word-record generation and sample (the Rng's
  // state at the build's start); otherwise starts over with a word stream of the given seed.
  void use(uint64_t o, const Rng& at_entry, int exw, uint64_t gen, uint64_t seed, const std::vector<std::string>& pool) {
    if (ws && o == owner && exw == ex_words && gen == oc_gen && std::memcmp(&key, &at_entry, sizeof(Rng)) == 0) return;
    ws.reset();  // hands the permutation back first
    owner = o;
    key = at_entry;
    ex_words = exw;
    oc_gen = gen;
    wrng = std::make_unique<Rng>(seed);
    ws = std::make_unique<WordStream>(pool, *wrng);
    pairs.clear();
    items.clear();
    ex_items.clear();
    ucw_prefix.assign(1, 0);
    recs.clear();
    rec_oc.clear();
    item_text.clear();
    texts.clear();
    max_len = 0;
    tried.clear();
  }
};

// Per-thread token counts and one-call word ids of list numbers ("12.") and pool words, kept across samples.
struct ListCache {
  const void* owner = nullptr;
  const Tokenizer* tok = nullptr;
  uint64_t oc_gen = 0;
  // A pool word: its text (in Cwe::pool_text_), per-chunk tokens (-1: not yet counted), one-call id
  // (UINT32_MAX: not yet interned), side by side so that a drawn word costs one cache miss; tail: the tokens
  // of its chunk when it ends the list (it joins the question), -1: not yet counted.
  struct PoolWord {
    uint32_t off, len;
    int32_t tokens;
    uint32_t oc;
    int32_t tail;
  };
  std::vector<PoolWord> pool;
  std::deque<std::string> nums;          // nums[i] = "i." (nums[0] unused)
  std::vector<int64_t> num_prefix;       // sum of the tokens of nums[1..i]
  std::vector<int64_t> num_bprefix;      // sum of the bytes of nums[1..i], one more each (its space)
  std::vector<uint32_t> num_ids;         // num_ids[i] = num_rec[i].oc, for the interned prefix
  std::vector<WordRec> num_rec;          // nums[i]'s one-call id (UINT32_MAX: not yet interned), tokens, bytes
  std::vector<std::string_view> num_sv;  // nums[i]
  static ListCache& local(const void* owner, const Tokenizer& tok, const std::vector<std::pair<uint32_t, uint32_t>>& words) {
    thread_local ListCache c;
    if (c.owner != owner || c.tok != &tok) {
      c = ListCache();
      c.owner = owner;
      c.tok = &tok;
      c.pool.reserve(words.size());
      for (auto [off, len] : words) c.pool.push_back(PoolWord{off, len, -1, UINT32_MAX, -1});
      c.nums.emplace_back();
      c.num_prefix.push_back(0);
      c.num_bprefix.push_back(0);
      c.num_rec.push_back(WordRec{UINT32_MAX, 0, 0, 0});
      c.num_sv.emplace_back();
    }
    return c;
  }
  std::string num_text;  // the numbers' texts back to back (WordRec::off), padded
  void numbers(size_t n, ChunkMemo& memo) {  // nums up to n
    if (nums.size() > n) return;
    while (nums.size() <= n) {
      nums.push_back(std::to_string(nums.size()) + ".");
      const int32_t k = static_cast<int32_t>(memo.get(nums.back()).size());
      num_prefix.push_back(num_prefix.back() + k);
      num_bprefix.push_back(num_bprefix.back() + static_cast<int64_t>(nums.back().size()) + 1);
      num_rec.push_back(WordRec{UINT32_MAX, k, static_cast<uint32_t>(nums.back().size()), append_padded(num_text, nums.back())});
      num_sv.emplace_back();
    }
    for (size_t i = 1; i < nums.size(); ++i) num_sv[i] = std::string_view(num_text.data() + num_rec[i].off, num_rec[i].len);
  }
  std::string scratch;        // the text of a list being written
  std::vector<uint32_t> ids;  // the one-call ids of a list being counted
  bool all_interned = false;  // every pool word has its one-call id (PoolWord::oc) of generation oc_gen
  int64_t prepared_for = 0;   // their binade outcomes are precomputed for prompts up to this budget
  void one_call_generation(uint64_t g) {
    if (g == oc_gen) return;
    oc_gen = g;
    all_interned = false;
    prepared_for = 0;
    for (PoolWord& w : pool) w.oc = UINT32_MAX;
    for (WordRec& r : num_rec) r.oc = UINT32_MAX;
    num_ids.clear();
  }
};

class Cwe : public RulerTask {
 public:
  Cwe(std::shared_ptr<const Ctx> ctx, const TaskInfo& info) : RulerTask(std::move(ctx), info), id_(next_id()) {
    const std::string ncw = std::to_string(kNumCw);
    pre_ = fill(tpl("instruction"), {{"num_cw", ncw}});
    q_ = fill(tpl("question"), {{"num_cw", ncw}});
    ap_ = fill(tpl("answer_prefix"), {{"num_cw", ncw}});
    sep_ = tpl("example_separator");
    const WordLists& W = *ctx_->res.words;
    std::set<std::string> s(W.nouns.begin(), W.nouns.end());
    s.insert(W.adjectives.begin(), W.adjectives.end());
    s.insert(W.verbs.begin(), W.verbs.end());
    for (auto& w : s)
      if (w.find('-') == std::string::npos) pool_.push_back(w);
    for (auto& w : pool_) {
      pool_words_.emplace_back(static_cast<uint32_t>(pool_text_.size()), static_cast<uint32_t>(w.size()));
      pool_text_ += w;
    }
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
    const bool fast = plain_ && ctx_->res.tokenizer->whitespace_separable() && !keep_ids;
    ListCache* lc = fast ? &ListCache::local(this, *ctx_->res.tokenizer, pool_words_) : nullptr;
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
          ListCache::PoolWord& pw = lc->pool[pi];
          if (pw.oc == UINT32_MAX) pw.oc = ioc->intern(pool_[pi]);
          if (pw.tokens < 0) pw.tokens = static_cast<int32_t>(ioc->alone(pw.oc));
        }
        lc->all_interned = true;
      }
      // Their outcomes in every binade this prompt's running score passes through (about -8 per token).
      if (lc->all_interned && budget > lc->prepared_for) {
        ioc->prepare(12.0 * double(budget));
        lc->prepared_for = budget;
      }
    }
    // The sample's words: those of its previous build when this is the same sample built again.
    const Rng at_entry = rng;
    const uint64_t wseed = rng.next();
    Drawn own;
    Drawn& d = fast ? Drawn::local() : own;
    d.use(id_, at_entry, st.ex_words, lc ? lc->oc_gen : 0, wseed, pool_);
    WordStream& ws = *d.ws;
    const int ex_words = st.ex_words, ex_cw = st.ex_cw, ex_ucw = st.ex_ucw;
    size_t next = 0;
    std::vector<std::string> ex_ws, ex_common;
    for (int i = 0; i < ex_words; ++i) ex_ws.push_back(ws.at(next++));
    ex_common.assign(ex_ws.begin(), ex_ws.begin() + std::min(ex_words, kNumCw));
    // The example's shuffled list as word ordinals (ex_order[k] = i: the k-th entry is example word i; the
    // fast path writes it from these) and as text (ex_list, the slow path's).
    std::vector<uint32_t> ex_order;
    for (int i = 0; i < ex_words; ++i)
      for (int r = 0; r < (i < kNumCw ? ex_cw : ex_ucw); ++r) ex_order.push_back(static_cast<uint32_t>(i));
    rng.shuffle(ex_order);
    std::vector<std::string> ex_list;  // made by the slow path's head()
    std::vector<std::string> common;
    for (int i = 0; i < kNumCw; ++i) common.push_back(ws.at(next++));
    const size_t first_ucw = next;
    const uint64_t shuffle_seed = rng.next();

    const std::string& pre = pre_;
    const std::string& q = q_;
    const std::string& ap = ap_;
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
    // Everything before the list: the worked example, then the instruction again. write_list(false) writes
    // the example's numbered list, write_list(true) its numbered answer (head and head_fast differ only there).
    auto head_layout = [&](PromptBuilder& pb, auto&& write_list) {
      pb.lit(pre);
      write_list(false);
      pb.lit(q);
      pb.lit(ap);
      pb.lit(" ");
      write_list(true);
      pb.lit(sep_);
      pb.lit(pre);
    };
    auto head = [&](PromptBuilder& pb) {
      if (ex_list.empty())
        for (uint32_t i : ex_order) ex_list.push_back(ex_ws[i]);
      head_layout(pb, [&](bool answer) { numbered(pb, answer ? ex_common : ex_list, nullptr, nullptr); });
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
    std::deque<std::string>& pairs = d.pairs;
    std::vector<Item>& items = d.items;
    std::vector<int64_t>& ucw_prefix = d.ucw_prefix;
    auto item_of = [&](size_t stream_index) {
      size_t pi = ws.pool_index(stream_index);
      std::string_view t;
      ListCache::PoolWord* pw = nullptr;
      if (pi == SIZE_MAX) {
        pairs.push_back(ws.at(stream_index));
        t = pairs.back();
      } else {
        pw = &lc->pool[pi];
        t = std::string_view(pool_text_).substr(pw->off, pw->len);
      }
      int32_t k;
      uint32_t oc_id = pw ? pw->oc : UINT32_MAX;
      if (pw && pw->tokens >= 0) {
        k = pw->tokens;
      } else if (ioc) {
        if (oc_id == UINT32_MAX) oc_id = ioc->intern(t);
        k = static_cast<int32_t>(ioc->alone(oc_id));
        if (pw) {
          pw->tokens = k;
          pw->oc = oc_id;
        }
      } else {
        k = static_cast<int32_t>(memo.get(t).size());
        if (pw) pw->tokens = k;
      }
      return Item{t, k, pi, oc_id};
    };
    // The one-call id of an item or list number ("12."), interned on first use by the builder's counter.
    auto item_oc = [&](OneCallCounter* oc, Item& it) {
      if (!oc) return UINT32_MAX;
      if (it.oc == UINT32_MAX) {
        if (it.pool != SIZE_MAX) {
          uint32_t& id = lc->pool[it.pool].oc;
          if (id == UINT32_MAX) id = oc->intern(it.text);
          it.oc = id;
        } else {
          it.oc = oc->intern(it.text);
        }
      }
      return it.oc;
    };
    auto num_oc = [&](OneCallCounter* oc, size_t i) {
      if (!oc) return UINT32_MAX;
      uint32_t& id = lc->num_rec[i].oc;
      if (id == UINT32_MAX) id = oc->intern(lc->nums[i]);
      return id;
    };
    // head() with the example's words and numbers written as known chunks (the fast path): no encode call
    // for an example word on its first sight, and no hashing of the words already counted.
    std::vector<Item>& ex_items = d.ex_items;
    auto head_fast = [&](PromptBuilder& pb) {
      if (ex_items.empty()) {
        for (int i = 0; i < ex_words; ++i) ex_items.push_back(item_of(static_cast<size_t>(i)));
        lc->numbers(ex_order.size(), memo);
      }
      OneCallCounter* oc = pb.one_call();
      if (oc) lc->one_call_generation(oc->generation());
      auto numbered_fast = [&](size_t count, auto&& word_at) {
        pb.lit("1.");
        for (size_t i = 0; i < count; ++i) {
          if (i > 0) pb.cut_word(lc->nums[i + 1], lc->num_prefix[i + 1] - lc->num_prefix[i], num_oc(oc, i + 1));
          Item& it = ex_items[word_at(i)];
          pb.cut_word(it.text, it.tokens, item_oc(oc, it));
        }
      };
      head_layout(pb, [&](bool answer) {
        if (answer)
          numbered_fast(ex_common.size(), [](size_t i) { return i; });
        else
          numbered_fast(ex_order.size(), [&](size_t i) { return ex_order[i]; });
      });
    };
    int64_t common_tokens = 0;
    if (fast) {
      if (items.empty())
        for (int i = 0; i < kNumCw; ++i) items.push_back(item_of(first_ucw - kNumCw + i));
      for (int i = 0; i < kNumCw; ++i) common_tokens += items[static_cast<size_t>(i)].tokens;
    }
    auto grow_ucw = [&](int64_t n) {
      const size_t end = first_ucw + static_cast<size_t>(std::max<int64_t>(n, 0));
      size_t i = first_ucw + items.size() - kNumCw;
      if (i >= end) return;
      // All the new words drawn first, then their records read with a prefetch ahead: the random reads of
      // the pool's records overlap instead of following one another.
      ws.pool_index(std::min(end, pool_.size()) - 1);
      grow_to(items, items.size() + (end - i));
      grow_to(ucw_prefix, ucw_prefix.size() + (end - i));
      for (; i < end; ++i) {
        if (lc && i + 8 < std::min(end, pool_.size())) __builtin_prefetch(&lc->pool[ws.pool_index(i + 8)]);
        items.push_back(item_of(i));
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
    // T of the prompt with the one-item list [w]: "1." ends the head's last chunk and a cut follows, so it is
    // T(head + "1.") + T(w + q + ap), and the latter is w's chunk (w and the start of q + ap up to their first
    // cut) plus the chunks after that cut. The fixed parts are counted once.
    const std::string qa = q + ap;
    size_t qa_cut = 0;  // the first cut of w + q + ap, as an offset into q + ap (w: no whitespace)
    while (qa_cut + 1 < qa.size() && !(qa[qa_cut] == ' ' && (qa_cut == 0 || !is_ws(qa[qa_cut - 1])) && !is_ws(qa[qa_cut + 1])))
      ++qa_cut;
    if (qa_cut + 1 >= qa.size()) qa_cut = qa.size();
    int64_t one_item_fixed = -1;
    std::string w_chunk;
    auto one_item = [&](const Item& it) {
      if (one_item_fixed < 0) {
        PromptBuilder pb(memo, false, false);
        head_fast(pb);
        pb.lit("1.");
        pb.finish();
        one_item_fixed = pb.tokens();
        if (qa_cut < qa.size()) {
          PromptBuilder rest(memo, false, false);
          rest.lit(std::string_view(qa).substr(qa_cut + 1));
          rest.finish();
          one_item_fixed += rest.tokens();
        }
      }
      // w's chunk, counted once per pool word and thread; the one-call count of a text without spaces is its
      // encoding's length, and much cheaper than an encode call.
      int32_t* known = it.pool != SIZE_MAX ? &lc->pool[it.pool].tail : nullptr;
      if (known && *known >= 0) return one_item_fixed + *known;
      w_chunk.assign(it.text.data(), it.text.size());
      w_chunk.append(qa, 0, qa_cut);
      const int32_t k = static_cast<int32_t>(ioc ? ioc->alone(ioc->intern(w_chunk)) : memo.get(w_chunk).size());
      if (known) *known = k;
      return one_item_fixed + k;
    };
    auto count_fast = [&](int64_t n) {
      grow_ucw(n);
      const int64_t N = n_common_items + n * st.freq_ucw;
      lc->numbers(static_cast<size_t>(N), memo);
      const size_t last = last_slot(N);
      return one_item(items[last]) + (lc->num_prefix[N] - lc->num_prefix[1]) + st.freq_cw * common_tokens +
             st.freq_ucw * ucw_prefix[n] - items[last].tokens;
    };
    auto count = prompt_counter(memo, assemble, ap);
    std::function<int64_t(int64_t)> T = count;
    if (fast) T = count_fast;
    int64_t n = fit_units(T, budget, std::max<int64_t>(0, (budget - 2000) / (5 * st.freq_ucw)), budget / st.freq_ucw);
    if (n < 0) throw TooShort{};

    if (fast) {
      // The final prompt, list words and numbers written as known chunks.
      grow_ucw(n);
      const int64_t N = n_common_items + n * st.freq_ucw;
      lc->numbers(static_cast<size_t>(N), memo);
      // A list size built before for this sample: the same prompt, so the same count.
      for (const Drawn::Tried& t : d.tried)
        if (t.n == n && outside_accept_window(t.one_call)) {
          Built b;
          b.count_only = true;
          b.prompt_tokens = t.tokens;
          b.one_call_tokens = t.one_call;
          b.one_call_stopped = t.stopped;
          b.one_call_curve = t.curve;
          return b;
        }
      std::vector<uint32_t> list(static_cast<size_t>(N));
      {
        uint32_t* o = list.data();
        for (int c = 0; c < kNumCw; ++c)
          for (int r = 0; r < st.freq_cw; ++r) *o++ = static_cast<uint32_t>(c);
        for (int64_t i = 0; i < n; ++i)
          for (int r = 0; r < st.freq_ucw; ++r) *o++ = static_cast<uint32_t>(kNumCw + i);
      }
      Rng sr(shuffle_seed);
      sr.shuffle(list);
      // The first occurrence of common word 0 (the answer's mark).
      const size_t first0 = static_cast<size_t>(std::find(list.begin(), list.end(), 0u) - list.begin());
      // The list after "1." as words: word 2i is entry i's item, word 2i - 1 the number "i+1." before it.
      const size_t W = 2 * static_cast<size_t>(N) - 1;
      OneCallCounter* any_oc = ioc.get();  // one-call ids are the thread's, whichever counter interns them
      if (d.recs.size() < items.size()) {
        std::string& buf = d.item_text;
        if (buf.size() >= kPad) buf.resize(buf.size() - kPad);
        grow_to(buf, buf.size() + (items.size() - d.recs.size()) * 12 + kPad);
        grow_to(d.recs, items.size());
        for (size_t k = d.recs.size(); k < items.size(); ++k) {
          if (k + 8 < items.size()) __builtin_prefetch(items[k + 8].text.data());
          Item& it = items[k];
          const uint32_t len = static_cast<uint32_t>(it.text.size());
          d.recs.push_back(WordRec{item_oc(any_oc, it), it.tokens, len, static_cast<uint32_t>(buf.size())});
          buf.append(it.text.data(), it.text.size());
          d.max_len = std::max(d.max_len, len);
        }
        buf.append(kPad, '\0');
        d.rec_oc.resize(d.recs.size());
        for (size_t k = 0; k < d.recs.size(); ++k) d.rec_oc[k] = d.recs[k].oc;
        d.texts.resize(d.recs.size());
        for (size_t k = 0; k < d.recs.size(); ++k)
          d.texts[k] = std::string_view(d.item_text.data() + d.recs[k].off, d.recs[k].len);
      }
      if (any_oc && lc->num_ids.size() <= static_cast<size_t>(N)) {
        const size_t from = lc->num_ids.size();
        lc->num_ids.resize(static_cast<size_t>(N) + 1, UINT32_MAX);
        for (size_t i = std::max<size_t>(from, 2); i <= static_cast<size_t>(N); ++i) lc->num_ids[i] = num_oc(any_oc, i);
      }
      const WordRec* irec = d.recs.data();
      const WordRec* nrec = lc->num_rec.data();
      const std::string_view* itext = d.texts.data();
      const std::string_view* ntext = lc->num_sv.data();
      const uint32_t* lp = list.data();
      auto rec_of = [&](size_t j) -> const WordRec& { return j & 1 ? nrec[(j + 1) / 2 + 1] : irec[lp[j / 2]]; };
      auto text_of = [&](size_t j) { return j & 1 ? ntext[(j + 1) / 2 + 1] : itext[lp[j / 2]]; };
      constexpr size_t kBlock = 4096;
      std::vector<std::string_view> bw(kBlock);
      std::vector<int32_t> bt(kBlock);
      std::vector<uint32_t> bid(kBlock);
      // Words [a, b) in blocks: with their texts (cut_words), or counted from their records (cut_words_counted).
      const char* ntxt = lc->num_text.data();
      const char* itxt = d.item_text.data();
      const size_t max_len = std::max<size_t>(d.max_len, lc->nums[static_cast<size_t>(N)].size());
      std::string& scratch = lc->scratch;
      auto words = [&](PromptBuilder& pb, size_t a, size_t b, bool text) {
        if (text && a < b && !pb.one_call()) {
          // The text written here, word by word from the padded buffers, then appended at once.
          if (scratch.size() < (b - a) * (max_len + 1) + kPad) scratch.resize((b - a) * (max_len + 1) + kPad);
          char* const base = scratch.data();
          char* p = base;
          int64_t tok = 0;
          for (size_t j = a; j < b; ++j) {
            const WordRec& r = rec_of(j);
            const char* src = (j & 1 ? ntxt : itxt) + r.off;
            *p = ' ';
            if (r.len <= kPad) std::memcpy(p + 1, src, kPad);
            else std::memcpy(p + 1, src, r.len);
            p += 1 + r.len;
            tok += r.tokens;
          }
          pb.text().append(base, static_cast<size_t>(p - base));
          const WordRec& last = rec_of(b - 1);
          pb.cut_words_appended(tok - last.tokens, static_cast<int64_t>(p - base) - static_cast<int64_t>(last.len) - 1,
                                text_of(b - 1), last.tokens);
          return;
        }
        for (size_t s0 = a; s0 < b; s0 += kBlock) {
          const size_t e = std::min(b, s0 + kBlock), m = e - s0;
          if (text) {
            for (size_t j = s0; j < e; ++j) {
              const WordRec& r = rec_of(j);
              bw[j - s0] = text_of(j);
              bt[j - s0] = r.tokens;
              bid[j - s0] = r.oc;
            }
            pb.cut_words(bw.data(), bt.data(), bid.data(), m);
          } else {
            int64_t tok = 0, bytes = 0;
            for (size_t j = s0; j < e; ++j) {
              if (!(j & 1) && j + 32 < W) __builtin_prefetch(irec + lp[(j + 32) / 2]);
              const WordRec& r = rec_of(j);
              bid[j - s0] = r.oc;
              tok += r.tokens;
              bytes += static_cast<int64_t>(r.len) + 1;
            }
            const WordRec& last = rec_of(e - 1);
            pb.cut_words_counted(tok - last.tokens, bytes - static_cast<int64_t>(last.len) - 1, bid.data(), m,
                                 text_of(e - 1), last.tokens);
          }
        }
      };
      auto write = [&](PromptBuilder& pb, size_t* mark, bool text) {
        OneCallCounter* oc = pb.one_call();
        if (oc) lc->one_call_generation(oc->generation());
        head_fast(pb);
        pb.out_reserve(static_cast<size_t>(N) * 16);
        pb.lit("1.");
        // The mark's word, and the one after it (which resolves the mark), on their own.
        const size_t mw = 2 * first0;
        words(pb, 0, mw, text);
        pb.cut_word(text_of(mw), rec_of(mw).tokens, rec_of(mw).oc, mark);
        if (mw + 1 < W) pb.cut_word(text_of(mw + 1), rec_of(mw + 1).tokens, rec_of(mw + 1).oc);
        const bool counted = !text && any_oc && pb.one_call();
        const bool raw = text && !pb.one_call();
        if (mw + 2 < W && (counted || raw)) {
          // The words after the mark (from an item, word mw + 2, to the list's last item, word W - 1) at once:
          // their tokens and bytes are the whole list's less those before them; then their one-call ids, or
          // their text written in place.
          const int64_t tok_all = (lc->num_prefix[static_cast<size_t>(N)] - lc->num_prefix[1]) +
                                  st.freq_cw * common_tokens + st.freq_ucw * ucw_prefix[static_cast<size_t>(n)];
          int64_t bytes_all = lc->num_bprefix[static_cast<size_t>(N)] - lc->num_bprefix[1];
          for (size_t k = 0; k < static_cast<size_t>(kNumCw + n); ++k)
            bytes_all += (k < kNumCw ? st.freq_cw : st.freq_ucw) * (static_cast<int64_t>(irec[k].len) + 1);
          int64_t tok_before = 0, bytes_before = 0;
          for (size_t j = 0; j < mw + 2; ++j) {
            tok_before += rec_of(j).tokens;
            bytes_before += static_cast<int64_t>(rec_of(j).len) + 1;
          }
          const WordRec& last = rec_of(W - 1);
          const int64_t tok = tok_all - tok_before, bytes = bytes_all - bytes_before;
          const WordRec* ir = irec;
          if (counted) {
            std::vector<uint32_t>& ids = lc->ids;
            const size_t m = W - (mw + 2);
            if (ids.size() < m) ids.resize(m);
            const uint32_t* nid = lc->num_ids.data();
            const uint32_t* iid = d.rec_oc.data();
            uint32_t* o = ids.data();
            *o++ = iid[lp[first0 + 1]];
            for (size_t i = first0 + 2; i < static_cast<size_t>(N); ++i) {
              o[0] = nid[i + 1];
              o[1] = iid[lp[i]];
              o += 2;
            }
            pb.cut_words_counted(tok - last.tokens, bytes - static_cast<int64_t>(last.len) - 1, ids.data(), m,
                                 text_of(W - 1), last.tokens);
          } else {
            std::string& out = pb.text();
            const size_t at = out.size();
            out.resize(at + static_cast<size_t>(bytes) + kPad);
            char* const base = out.data() + at;
            char* p = base;
            auto put = [&p](const WordRec& r, const char* txt) {
              *p = ' ';
              if (r.len <= kPad) std::memcpy(p + 1, txt + r.off, kPad);
              else std::memcpy(p + 1, txt + r.off, r.len);
              p += 1 + r.len;
            };
            put(ir[lp[first0 + 1]], itxt);
            for (size_t i = first0 + 2; i < static_cast<size_t>(N); ++i) {
              if (i + 16 < static_cast<size_t>(N)) __builtin_prefetch(ir + lp[i + 16]);
              put(nrec[i + 1], ntxt);
              put(ir[lp[i]], itxt);
            }
            if (p - base != bytes) throw Error("internal: cwe list text of " + std::to_string(p - base) + " bytes, not " + std::to_string(bytes));
            out.resize(at + static_cast<size_t>(bytes));
            pb.cut_words_appended(tok - last.tokens, bytes - static_cast<int64_t>(last.len) - 1, text_of(W - 1), last.tokens);
          }
        } else {
          words(pb, std::min(W, mw + 2), W, text);
        }
        pb.lit(q);
      };
      auto extra = [&](Built& b) {
        b.extra["list_items"] = kNumCw * st.freq_cw + n * st.freq_ucw;
        b.extra["repeats"] = {st.freq_cw, st.freq_ucw};
        b.extra["example_words"] = st.ex_words;
      };
      // The one-call count first, without the text: a prompt outside the window generate() accepts is
      // rejected whatever it holds, so its text is not written (Built::count_only); otherwise the text follows,
      // with the count's results.
      PromptBuilder cpb(memo, false, false, OneCallMode::always);
      if (cpb.one_call()) {
        size_t cmark = SIZE_MAX;
        write(cpb, &cmark, false);
        cpb.lit(ap);
        cpb.finish();
        d.tried.push_back(Drawn::Tried{n, cpb.tokens(), cpb.one_call_tokens(), cpb.one_call_stopped(), cpb.one_call_curve()});
        if (outside_accept_window(cpb.one_call_tokens())) {
          Built b;
          b.count_only = true;
          b.prompt_tokens = cpb.tokens();
          b.one_call_tokens = cpb.one_call_tokens();
          b.one_call_stopped = cpb.one_call_stopped();
          b.one_call_curve = cpb.one_call_curve();
          return b;
        }
      }
      Built b;
      b.haystack = "words";
      b.outputs = common;
      PromptBuilder pb(memo, true, false, cpb.one_call() ? OneCallMode::never : OneCallMode::with_text);
      size_t mark = SIZE_MAX;
      write(pb, &mark, true);
      finish_marked(b, pb, mark, ap, n, false);
      if (cpb.one_call()) {
        b.one_call_tokens = cpb.one_call_tokens();
        b.one_call_stopped = cpb.one_call_stopped();
        b.one_call_curve = cpb.one_call_curve();
        b.one_call_marks.clear();
        for (size_t m = 0; m < cpb.num_marks(); ++m)
          b.one_call_marks.emplace_back(cpb.mark_char(m), cpb.mark_one_call_token(m));
      }
      extra(b);
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
  std::string pool_text_;                                  // the pool's words back to back
  std::vector<std::pair<uint32_t, uint32_t>> pool_words_;  // (offset, length) of each in pool_text_
  bool plain_ = false;  // every pool word is free of whitespace
  uint64_t id_;         // unique per generator in the process (Drawn::owner)
  std::string pre_, q_, ap_, sep_;  // the instruction, question, answer prefix and example separator, filled
  static uint64_t next_id() {
    static std::atomic<uint64_t> n{0};
    return ++n;
  }
};

}  // namespace

std::unique_ptr<TaskGenerator> make_cwe(std::shared_ptr<const Ctx> ctx, const TaskInfo& info) {
  return std::make_unique<Cwe>(std::move(ctx), info);
}

}  // namespace lctx::ruler
