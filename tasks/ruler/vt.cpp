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
    const bool keep_ids = ctx_->opts.keep_ids;
    ChunkMemo& memo = ChunkMemo::local(*ctx_->res.tokenizer);
    const Lines& ls = lines(memo);
    const auto& sents = ls.sents;
    const int64_t S = static_cast<int64_t>(sents.size());
    const Line& full_line = ls.full_line;
    const std::vector<Line>& partial = ls.partial;

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
    const std::string& pre = ls.pre;
    auto q = [&](const Chain& c) { return fill(ls.question, {{"query", c.value}, {"num_v", nv}}); };
    auto a = [&](const Chain& c) { return fill(ls.answer_prefix, {{"query", c.value}, {"num_v", nv}}); };
    const std::string q_ex = q(ex), a_ex = a(ex), q_chain = q(chain), a_chain = a(chain);
    const std::string ex_answer = " " + join(ex.vars, " ");

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
      pb.lit(q_ex);
      pb.lit(a_ex);
      pb.lit(ex_answer);
      pb.lit(ls.separator);
      pb.lit(pre);
      context(pb, n, chain, frac, marks, answer_mark);
      pb.lit(q_chain);
    };
    auto count = [&](int64_t n) {
      PromptBuilder pb(memo, false, false);
      assemble(pb, n, nullptr, nullptr);
      pb.lit(a_chain);
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
    pb.lit(a_chain);
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

 private:
  // The filler lines (the noise sentences joined, whole and cut after each sentence) and the template strings,
  // made once per thread for the generator's tokenizer and templates (the lines' one-call ids are the thread's).
  struct Lines {
    std::shared_ptr<const Tokenizer> tok;
    std::shared_ptr<const Templates> tpl;
    const ChunkMemo* memo = nullptr;
    std::string section;
    std::vector<std::string> sents;
    Line full_line;
    std::vector<Line> partial;
    std::string pre, question, answer_prefix, separator;
  };
  const Lines& lines(ChunkMemo& memo) const {
    thread_local Lines l;
    if (l.tok != ctx_->res.tokenizer || l.tpl != ctx_->tpl || l.memo != &memo || l.section != section_) {
      l = Lines();
      l.section = section_;
      l.tok = ctx_->res.tokenizer;
      l.tpl = ctx_->tpl;
      l.memo = &memo;
      l.sents = ctx_->tpl->noise_sentences();
      std::string full;
      for (auto& s : l.sents) full += (full.empty() ? "" : " ") + s;
      l.full_line = Line::make(full, memo);
      std::string acc;
      for (auto& s : l.sents) {
        acc += (acc.empty() ? "" : " ") + s;
        l.partial.push_back(Line::make(acc, memo));
      }
      l.pre = tpl("instruction");
      l.question = tpl("question");
      l.answer_prefix = tpl("answer_prefix");
      l.separator = tpl("example_separator");
    }
    return l;
  }
};

}  // namespace

std::unique_ptr<TaskGenerator> make_vt(std::shared_ptr<const Ctx> ctx, const TaskInfo& info) {
  return std::make_unique<Vt>(std::move(ctx), info);
}

}  // namespace lctx::ruler
