// Needle-in-a-haystack tasks (RULER niah_*): needles "One of the special magic ... for KEY is: VALUE." placed
// at depths in an essay (corpus), noise (filler lines) or needle (distractor needles) haystack.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "tasks/ruler/ruler.hpp"

namespace lctx::ruler {
namespace {

struct NiahConfig {
  std::string haystack, key_type, value_type;
  int keys, values, queries;
};

NiahConfig niah_config(const TaskInfo& t) {
  const auto& p = t.params;
  return {p.at("haystack").get<std::string>(), p.at("key_type").get<std::string>(), p.at("value_type").get<std::string>(),
          p.at("keys").get<int>(), p.at("values").get<int>(), p.at("queries").get<int>()};
}

std::string join_and(const std::vector<std::string>& v) {
  if (v.size() == 1) return v[0];
  std::string s;
  for (size_t i = 0; i + 1 < v.size(); ++i) s += v[i] + ", ";
  return s + "and " + v.back();
}

struct Needle {
  std::string text;
  double depth = 0;
  size_t value_off = std::string::npos;  // offset of outputs[0] in text (first answer needle only)
};

class Niah : public RulerTask {
 public:
  Niah(std::shared_ptr<const Ctx> ctx, const TaskInfo& info) : RulerTask(std::move(ctx), info), cfg_(niah_config(info)) {}

 protected:
  Built build(int64_t budget, Rng& rng, std::optional<double> depth, int64_t) const override;
  bool cuts_haystack() const override { return cfg_.haystack == "essay"; }

 private:
  NiahConfig cfg_;
};

// Needle placement inside a haystack of `units` units: unit offset before which needle i goes.
int64_t unit_at(int64_t units, double depth) {
  return std::min<int64_t>(units, static_cast<int64_t>(std::floor(double(units) * depth / 100.0)));
}

Built Niah::build(int64_t budget, Rng& rng, std::optional<double> depth, int64_t) const {
  const Templates& T = *ctx_->tpl;
  const WordLists& W = *ctx_->res.words;
  const bool keep_ids = ctx_->opts.keep_ids;
  ChunkMemo& memo = ChunkMemo::local(*ctx_->res.tokenizer);

  // Keys, values, queries (RULER: the number of keys is raised to at least the number of queries).
  const int nk = std::max(cfg_.keys, cfg_.queries);
  std::vector<std::string> keys;
  while (static_cast<int>(keys.size()) < nk) {
    std::string k = cfg_.key_type == "uuids" ? rng.uuid4() : random_word_key(rng, W);
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  }
  std::vector<std::vector<std::string>> values(nk);
  for (auto& vs : values)
    while (static_cast<int>(vs.size()) < cfg_.values) {
      std::string v = random_value(rng, W, cfg_.value_type);
      if (std::find(vs.begin(), vs.end(), v) == vs.end()) vs.push_back(v);
    }
  std::vector<size_t> queried = rng.sample_indices(nk, cfg_.queries);
  const std::string tn = cfg_.value_type;  // plural ("numbers", "uuids", "words")
  const std::string needle_tpl = tpl("needle");

  std::vector<Needle> needles;
  for (int k = 0; k < nk; ++k)
    for (int v = 0; v < cfg_.values; ++v)
      needles.push_back(Needle{fill(needle_tpl, {{"type_needle_v", tn}, {"key", keys[k]}, {"value", values[k][v]}})});
  Built b;
  for (size_t q : queried)
    for (auto& v : values[q]) b.outputs.push_back(v);
  // The first answer needle: (queried[0], value 0).
  const size_t first_answer = queried[0] * cfg_.values;
  needles[first_answer].value_off = needles[first_answer].text.rfind(values[queried[0]][0]);

  // Depths: RULER's grid drawn without replacement, needles shuffled onto the sorted depths; with a requested
  // depth, the first answer needle goes there and the others take grid depths.
  const auto& grid = depth_grid();
  std::vector<size_t> order(needles.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  rng.shuffle(order);
  auto picks = rng.sample_indices(grid.size(), needles.size());
  std::vector<double> ds;
  for (size_t p : picks) ds.push_back(grid[p]);
  std::sort(ds.begin(), ds.end());
  for (size_t i = 0; i < order.size(); ++i) needles[order[i]].depth = ds[i];
  if (depth) {
    // The answer needle sits at the requested depth; the others keep their grid depths.
    needles[first_answer].depth = *depth;
  }
  std::vector<size_t> placed(needles.size());
  for (size_t i = 0; i < placed.size(); ++i) placed[i] = i;
  std::stable_sort(placed.begin(), placed.end(), [&](size_t a, size_t c) { return needles[a].depth < needles[c].depth; });

  const bool one = cfg_.queries * cfg_.values == 1;
  const std::string tq = one ? tn.substr(0, tn.size() - 1) : tn;
  std::vector<std::string> qkeys;
  for (size_t q : queried) qkeys.push_back(keys[q]);
  const std::string query = join_and(qkeys);
  const std::string sfx = one ? "_single" : "_multi";
  const std::string pre = fill(tpl("instruction" + sfx), {{"type_needle_v", tq}, {"query", query}});
  const std::string post = fill(tpl("question" + sfx), {{"type_needle_v", tq}, {"query", query}});
  const std::string ap = fill(tpl("answer_prefix" + sfx), {{"type_needle_v", tq}, {"query", query}});

  b.haystack = cfg_.haystack;
  for (auto& n : needles) b.depths.push_back(n.depth);

  // Writes the needle at the builder's current position, recording its marks.
  struct Marks {
    std::vector<size_t> needle;
    size_t answer = SIZE_MAX;
  };
  auto put_needle = [&](PromptBuilder& pb, size_t i, Marks* mk) {
    const Needle& nd = needles[i];
    if (!mk) return pb.lit(nd.text);
    mk->needle[i] = pb.mark();
    if (nd.value_off == std::string::npos) return pb.lit(nd.text);
    pb.lit(std::string_view(nd.text).substr(0, nd.value_off));
    mk->answer = pb.mark();
    pb.lit(std::string_view(nd.text).substr(nd.value_off));
  };

  std::function<void(PromptBuilder&, int64_t, Marks*)> assemble;
  struct Tail {
    std::vector<OneCallCounter::Checkpoint> cps;  // one-call state at the start of haystack words from, from + 1, ...
    int64_t from = 0, n = 0;
  };
  std::shared_ptr<Tail> tail;  // essay haystacks
  int64_t n_max = 0;
  double per_unit = 1;

  if (cfg_.haystack == "essay") {
    const Corpus& C = *ctx_->res.corpus;
    const size_t W0 = C.num_words();
    const size_t w0 = C.sentence_begin(rng.below(C.num_sentences()));
    // Window offset of the first sentence start at or after window offset t.
    auto snap = [&C, W0, w0](int64_t t, int64_t n) -> int64_t {
      if (t >= n) return n;
      size_t idx = (w0 + static_cast<size_t>(t)) % W0;
      size_t lo = 0, hi = C.num_sentences();  // first sentence with begin >= idx
      while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (C.sentence_begin(mid) < idx) lo = mid + 1; else hi = mid;
      }
      size_t sb = lo < C.num_sentences() ? C.sentence_begin(lo) : W0;
      return std::min<int64_t>(n, t + static_cast<int64_t>(sb - idx));
    };
    auto hay = [&C, W0, w0](PromptBuilder& pb, int64_t a, int64_t b2, bool& sep) {
      while (a < b2) {
        size_t cw = (w0 + static_cast<size_t>(a)) % W0;
        int64_t len = std::min<int64_t>(b2 - a, static_cast<int64_t>(W0 - cw));
        if (sep) pb.lit(" ");
        pb.words(C, cw, cw + static_cast<size_t>(len));
        sep = true;
        a += len;
      }
    };
    // The final build records the one-call state at the start of each of the haystack's last words (after
    // the last needle), so that the prompt can be cut to fewer words there without building it again.
    tail = std::make_shared<Tail>();
    const int64_t tail_words = 4 * (slack_ + budget / 1024) + 64;
    assemble = [&, snap, hay, tail_words](PromptBuilder& pb, int64_t n, Marks* mk) {
      pb.lit(pre);
      bool sep = false;
      int64_t cur = 0;
      for (size_t i : placed) {
        int64_t at = std::max(cur, snap(unit_at(n, needles[i].depth), n));
        hay(pb, cur, at, sep);
        cur = at;
        if (sep) pb.lit(" ");
        put_needle(pb, i, mk);
        sep = true;
      }
      OneCallCounter* oc = mk ? pb.one_call() : nullptr;
      const int64_t from = oc ? std::max(cur, n - tail_words) : n;
      hay(pb, cur, from, sep);
      tail->cps.clear();
      tail->from = from;
      tail->n = n;
      if (from < n && sep) {
        oc->trace(&tail->cps);
        hay(pb, from, n, sep);
        oc->trace(nullptr);
      } else {
        hay(pb, from, n, sep);
      }
      pb.lit(post);
    };
    n_max = budget;  // every word takes at least one token
    per_unit = double(C.num_tokens()) / double(C.num_words());
  } else if (cfg_.haystack == "noise") {
    // Filler lines of five sentences, newline-joined; n counts sentences (the last line may be partial).
    auto sents = T.noise_sentences();
    const int64_t S = static_cast<int64_t>(sents.size());
    std::string full;
    for (auto& s : sents) full += (full.empty() ? "" : " ") + s;
    auto full_line = std::make_shared<Line>(Line::make(full, memo));
    auto partial = std::make_shared<std::vector<Line>>();
    std::string acc;
    for (int64_t r = 0; r < S; ++r) {
      acc += (acc.empty() ? "" : " ") + sents[r];
      partial->push_back(Line::make(acc, memo));
    }
    assemble = [&, S, full_line, partial](PromptBuilder& pb, int64_t n, Marks* mk) {
      const int64_t L = (n + S - 1) / S, rem = n % S;
      auto lines = [&](int64_t a, int64_t b2, bool& sep) {  // lines [a, b2)
        int64_t fulls = std::min(b2, rem ? L - 1 : L) - a;
        if (fulls > 0) {
          if (!sep) {
            pb.line(*full_line);
            sep = true;
            --fulls;
          }
          pb.repeat("\n", *full_line, fulls);
        }
        if (rem && a < L && b2 == L) {
          if (sep) pb.lit("\n");
          pb.line((*partial)[rem - 1]);
          sep = true;
        }
      };
      pb.lit(pre);
      bool sep = false;
      int64_t cur = 0;
      for (size_t i : placed) {
        int64_t at = std::max(cur, unit_at(L, needles[i].depth));
        lines(cur, at, sep);
        cur = at;
        if (sep) pb.lit("\n");
        put_needle(pb, i, mk);
        sep = true;
      }
      lines(cur, L, sep);
      pb.lit(post);
    };
    n_max = budget + 16;
    per_unit = double(memo.get(sents[0]).size());
  } else {
    // Needle haystack: distractor needles with fresh random keys and values, one per line; n counts lines,
    // and n_words (set below) a word prefix of one more distractor line that fills the remainder.
    auto dist = std::make_shared<std::vector<std::string>>();
    auto drng = std::make_shared<Rng>(rng.next());
    auto get = [this, dist, drng, &keys, &W, &needle_tpl, tn](int64_t i) -> const std::string& {
      while (static_cast<int64_t>(dist->size()) <= i) {
        std::string k;
        do k = cfg_.key_type == "uuids" ? drng->uuid4() : random_word_key(*drng, W);
        while (std::find(keys.begin(), keys.end(), k) != keys.end());
        dist->push_back(fill(needle_tpl, {{"type_needle_v", tn}, {"key", k}, {"value", random_value(*drng, W, cfg_.value_type)}}));
      }
      return (*dist)[i];
    };
    auto extra_words = std::make_shared<int64_t>(0);
    assemble = [&, get, extra_words](PromptBuilder& pb, int64_t n, Marks* mk) {
      pb.lit(pre);
      bool sep = false;
      int64_t cur = 0;
      auto lines = [&](int64_t a, int64_t b2) {
        for (int64_t l = a; l < b2; ++l) {
          if (sep) pb.lit("\n");
          pb.lit(get(l));
          sep = true;
        }
      };
      for (size_t i : placed) {
        int64_t at = std::max(cur, unit_at(n, needles[i].depth));
        lines(cur, at);
        cur = at;
        if (sep) pb.lit("\n");
        put_needle(pb, i, mk);
        sep = true;
      }
      lines(cur, n);
      if (*extra_words > 0) {
        const std::string& l = get(n);
        size_t p = 0;
        for (int64_t w = 0; w < *extra_words && p != std::string::npos; ++w) p = l.find(' ', p + 1);
        pb.lit("\n");
        pb.lit(std::string_view(l).substr(0, p == std::string::npos ? l.size() : p));
      }
      pb.lit(post);
    };
    per_unit = double(memo.get(get(0)).size());
    n_max = budget + 16;
    // First whole lines, then words of one more line.
    auto count = prompt_counter(memo, assemble, ap);
    int64_t n = fit_units(count, budget, static_cast<int64_t>(budget / per_unit), n_max);
    if (n < 0) throw TooShort{};
    const int64_t nw = static_cast<int64_t>(std::count(get(n).begin(), get(n).end(), ' ')) + 1;
    *extra_words = fit_units([&](int64_t m) { *extra_words = m; return count(n); }, budget, nw / 2, nw - 1);
    if (*extra_words < 0) *extra_words = 0;
    n_max = n;  // the final build below uses n directly
  }

  auto count = prompt_counter(memo, assemble, ap);
  int64_t n;
  if (cfg_.haystack == "needle") {
    n = n_max;
  } else {
    n = fit_units(count, budget, static_cast<int64_t>(double(budget - 200) / per_unit), n_max);
    if (n < 0) throw TooShort{};
  }

  PromptBuilder pb(memo, true, keep_ids);
  if (cfg_.haystack == "essay") {
    // The essay words' bytes, so that the text is written without growing its buffer.
    const Corpus& C = *ctx_->res.corpus;
    const double per_word = double(C.text(0, C.num_words()).size() + 1) / double(C.num_words());
    size_t extra = pre.size() + post.size() + ap.size() + 4096;
    for (auto& nd : needles) extra += nd.text.size() + 2;
    pb.out_reserve(static_cast<size_t>(double(n) * per_word * 1.01) + extra);
  }
  Marks mk;
  mk.needle.assign(needles.size(), 0);
  assemble(pb, n, &mk);
  const size_t input_end = static_cast<size_t>(pb.bytes());
  pb.lit(ap);
  finish_built(b, pb, input_end, keep_ids);
  for (size_t i = 0; i < needles.size(); ++i) {
    b.needle_tokens.push_back(pb.mark_token(mk.needle[i]));
    b.needle_chars.push_back(pb.mark_char(mk.needle[i]));
  }
  b.answer_token = pb.mark_token(mk.answer);
  b.answer_char = pb.mark_char(mk.answer);
  b.extra["answer_char_offset"] = pb.mark_char(mk.answer);
  b.extra["haystack_units"] = n;
  b.extra["keys"] = keys;
  if (tail && !tail->cps.empty() && static_cast<int64_t>(tail->cps.size()) == tail->n - tail->from) {
    // Cutting the haystack after word m (from <= m < n): the one-call count resumes from the state at m's start,
    // then m, the question and the answer prefix are counted.
    const Tokenizer* tok = ctx_->res.tokenizer.get();
    b.trim = [tail, tok, post, ap](Built& bb, int64_t lo, int64_t hi) -> int64_t {
      const auto& cps = tail->cps;
      const int64_t K = static_cast<int64_t>(cps.size());
      const int64_t hay_end = static_cast<int64_t>(bb.input.size() - post.size());
      auto word_end = [&](int64_t k) { return k + 1 < K ? cps[k + 1].pos - 1 : hay_end; };
      auto count = [&](int64_t k) {
        OneCallCounter oc(*tok);
        oc.resume(cps[k]);
        oc.text(std::string_view(bb.input).substr(cps[k].pos, word_end(k) - cps[k].pos));
        oc.text(post);
        oc.text(ap);
        return oc.finish();
      };
      int64_t l = 0, h = K - 1;  // the largest k whose count is <= hi, by bisection (counts grow with k)
      if (count(0) > hi) return -1;
      while (l < h) {
        const int64_t m = l + (h - l + 1) / 2;
        if (count(m) <= hi) l = m; else h = m - 1;
      }
      int64_t best = -1, best_count = -1;
      for (int64_t k = std::min(K - 1, l + 4); k >= std::max<int64_t>(0, l - 4); --k) {
        const int64_t c = count(k);
        if (c >= lo && c <= hi) {
          best = k;
          best_count = c;
          break;
        }
      }
      if (best < 0) return -2;
      bb.input.resize(static_cast<size_t>(word_end(best)));
      bb.input += post;
      bb.extra["haystack_units"] = tail->from + best + 1;
      return best_count;
    };
  }
  return b;
}

}  // namespace

std::unique_ptr<TaskGenerator> make_niah(std::shared_ptr<const Ctx> ctx, const TaskInfo& info) {
  return std::make_unique<Niah>(std::move(ctx), info);
}

}  // namespace lctx::ruler
