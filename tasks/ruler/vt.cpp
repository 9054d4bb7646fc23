// Variable tracking (RULER vt): one chain "VAR A = 12345", "VAR B = VAR A", ... (4 hops) hidden at random
// lines of the noise haystack, after one short worked example. Answer: every variable of the chain.
#include <algorithm>
#include <cmath>

#include "core/strings.hpp"
#include "core/rng.hpp"
#include "tasks/ruler/ruler.hpp"

namespace lctx::ruler {
namespace {

constexpr int kHops = 4, kChains = 1, kVarLen = 5;

std::string random_var(Rng& rng) {
  std::string s;
  for (int i = 0; i < kVarLen; ++i) s += static_cast<char>('A' + rng.below(26));
  return s;
}

struct Chain {
  std::vector<std::string> vars, lines;
  std::string value;
};

Chain make_chain(Rng& rng, std::vector<std::string>& used) {
  Chain c;
  while (static_cast<int>(c.vars.size()) < kHops + 1) {
    std::string v = random_var(rng);
    if (std::find(used.begin(), used.end(), v) == used.end()) {
      used.push_back(v);
      c.vars.push_back(v);
    }
  }
  c.value = std::to_string(rng.range(10000, 99999));
  c.lines.push_back("VAR " + c.vars[0] + " = " + c.value);
  for (int j = 0; j < kHops; ++j) c.lines.push_back("VAR " + c.vars[j + 1] + " = VAR " + c.vars[j]);
  return c;
}

class Vt : public RulerTask {
 public:
  Vt(std::shared_ptr<const Ctx> ctx, const TaskInfo& info) : RulerTask(std::move(ctx), info) {}

 protected:
  Built build(int64_t budget, Rng& rng, std::optional<double>, int64_t) const override {
    const Templates& T = *ctx_->tpl;
    const bool keep_ids = ctx_->opts.keep_ids;
    ChunkMemo& memo = ChunkMemo::local(*ctx_->res.tokenizer);
    auto sents = T.noise_sentences();
    const int64_t S = static_cast<int64_t>(sents.size());
    std::string full;
    for (auto& s : sents) full += (full.empty() ? "" : " ") + s;
    const Line full_line = Line::make(full, memo);
    std::vector<Line> partial;
    std::string acc;
    for (auto& s : sents) {
      acc += (acc.empty() ? "" : " ") + s;
      partial.push_back(Line::make(acc, memo));
    }

    std::vector<std::string> used;
    Chain chain = make_chain(rng, used);
    Chain ex = make_chain(rng, used);  // the worked example's chain
    // Chain line positions as fractions of the haystack, fixed before the haystack is sized.
    std::vector<double> frac;
    for (int j = 0; j <= kHops; ++j) frac.push_back(rng.uniform());
    std::sort(frac.begin(), frac.end());
    std::vector<double> exfrac;
    for (int j = 0; j <= kHops; ++j) exfrac.push_back(rng.uniform());
    std::sort(exfrac.begin(), exfrac.end());

    const std::string nv = std::to_string(kHops + 1);
    auto pre = tpl("instruction");
    auto q = [&](const Chain& c) { return fill(tpl("question"), {{"query", c.value}, {"num_v", nv}}); };
    auto a = [&](const Chain& c) { return fill(tpl("answer_prefix"), {{"query", c.value}, {"num_v", nv}}); };

    // Noise lines [0, L) with chain lines inserted before line floor(frac * (L + 1)) (clamped), newline-joined.
    auto context = [&](PromptBuilder& pb, int64_t n, const Chain& c, const std::vector<double>& fr,
                       std::vector<size_t>* marks, size_t* answer_mark) {
      const int64_t L = (n + S - 1) / S, rem = n % S;
      bool sep = false;
      int64_t cur = 0;
      auto lines = [&](int64_t a2, int64_t b2) {
        int64_t fulls = std::min(b2, rem ? L - 1 : L) - a2;
        if (fulls > 0) {
          if (!sep) {
            pb.line(full_line);
            sep = true;
            --fulls;
          }
          pb.repeat("\n", full_line, fulls);
        }
        if (rem && a2 < L && b2 == L) {
          if (sep) pb.lit("\n");
          pb.line(partial[rem - 1]);
          sep = true;
        }
      };
      for (size_t j = 0; j < c.lines.size(); ++j) {
        int64_t at = std::max(cur, std::min<int64_t>(L, static_cast<int64_t>(std::floor(fr[j] * double(L + 1)))));
        lines(cur, at);
        cur = at;
        if (sep) pb.lit("\n");
        if (marks) marks->push_back(pb.mark());
        if (answer_mark && j == 0) {  // RULER's token_position_answer: the first variable of the chain
          pb.lit("VAR ");
          *answer_mark = pb.mark();
          pb.lit(std::string_view(c.lines[j]).substr(4));
        } else {
          pb.lit(c.lines[j]);
        }
        sep = true;
      }
      lines(cur, L);
    };
    auto assemble = [&](PromptBuilder& pb, int64_t n, std::vector<size_t>* marks, size_t* answer_mark) {
      // The worked example: a small haystack (3 noise lines) with its answer.
      pb.lit(pre);
      context(pb, 3 * S, ex, exfrac, nullptr, nullptr);
      pb.lit(q(ex));
      pb.lit(a(ex));
      pb.lit(" " + join(ex.vars, " "));
      pb.lit(tpl("example_separator"));
      pb.lit(pre);
      context(pb, n, chain, frac, marks, answer_mark);
      pb.lit(q(chain));
    };
    auto count = [&](int64_t n) {
      PromptBuilder pb(memo, false, false);
      assemble(pb, n, nullptr, nullptr);
      pb.lit(a(chain));
      pb.finish();
      return pb.tokens();
    };
    const double per = double(memo.get(sents[0]).size());
    int64_t n = fit_units(count, budget, static_cast<int64_t>(double(budget - 300) / per), budget);
    if (n < 0) throw TooShort{};

    Built b;
    b.haystack = "noise";
    b.outputs = chain.vars;
    PromptBuilder pb(memo, true, keep_ids);
    std::vector<size_t> marks;
    size_t answer_mark = 0;
    assemble(pb, n, &marks, &answer_mark);
    const size_t input_end = static_cast<size_t>(pb.bytes());
    pb.lit(a(chain));
    finish_built(b, pb, input_end, keep_ids);
    for (size_t m : marks) {
      b.needle_tokens.push_back(pb.mark_token(m));
      b.needle_chars.push_back(pb.mark_char(m));
      b.depths.push_back(100.0 * double(pb.mark_token(m)) / double(std::max<int64_t>(1, b.prompt_tokens)));
    }
    // RULER's answer position: the first answer (the chain's first variable) is in the first chain line.
    b.answer_token = pb.mark_token(answer_mark);
    b.answer_char = pb.mark_char(answer_mark);
    b.extra["haystack_units"] = n;
    b.extra["value"] = chain.value;
    return b;
  }
};

}  // namespace

std::unique_ptr<TaskGenerator> make_vt(std::shared_ptr<const Ctx> ctx, const TaskInfo& info) {
  return std::make_unique<Vt>(std::move(ctx), info);
}

}  // namespace lctx::ruler
