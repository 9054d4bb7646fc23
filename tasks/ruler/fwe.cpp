// Frequent words extraction (RULER fwe): random 6-letter coded words whose counts follow a zeta(2) law
// (count of rank k = floor(n * k^-2 / zeta(2))); the top rank is the noise word "....". Answer: the three
// most frequent real coded words.
#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/rng.hpp"
#include "tasks/ruler/ruler.hpp"

namespace lctx::ruler {
namespace {

constexpr int kWordLen = 6;
constexpr double kAlpha = 2.0;  // the count law below is written out for alpha = 2 (portable arithmetic)

class Fwe : public RulerTask {
 public:
  Fwe(std::shared_ptr<const Ctx> ctx, const TaskInfo& info) : RulerTask(std::move(ctx), info) {}

 protected:
  Built build(int64_t budget, Rng& rng, std::optional<double>, int64_t) const override {
    const bool keep_ids = ctx_->opts.keep_ids;
    ChunkMemo& memo = ChunkMemo::local(*ctx_->res.tokenizer);
    const int64_t length = budget + ttg_;
    const int64_t V = std::max<int64_t>(8, length / 50);  // RULER: vocabulary of max_seq_length // 50
    std::vector<std::string> vocab;
    std::unordered_set<std::string> seen;
    while (static_cast<int64_t>(vocab.size()) < V) {
      std::string w(kWordLen, 'a');
      for (auto& c : w) c = static_cast<char>('a' + rng.below(26));
      if (seen.insert(w).second) vocab.push_back(w);
    }
    vocab[0] = tpl("noise_word");
    const double zeta = 1.6449340668482264;  // zeta(2) = pi^2 / 6
    const uint64_t shuffle_seed = rng.next();
    auto counts = [&](int64_t n) {
      std::vector<int64_t> c(V);
      for (int64_t k = 0; k < V; ++k) c[k] = static_cast<int64_t>(std::floor(double(n) / (double(k + 1) * double(k + 1)) / zeta));
      return c;
    };
    auto list_for = [&](int64_t n) {
      auto c = counts(n);
      std::vector<uint32_t> list;
      for (int64_t k = 0; k < V; ++k)
        for (int64_t r = 0; r < c[k]; ++r) list.push_back(static_cast<uint32_t>(k));
      Rng sr(shuffle_seed);
      sr.shuffle(list);
      return list;
    };
    const std::string pre = tpl("instruction");
    const std::string q = fill(tpl("question"), {{"noise_word", vocab[0]}});
    const std::string ap = tpl("answer_prefix");
    auto assemble = [&](PromptBuilder& pb, int64_t n, size_t* mark) {
      pb.lit(pre);
      auto list = list_for(n);
      for (size_t i = 0; i < list.size(); ++i) {
        if (i) pb.lit(" ");
        if (mark && *mark == SIZE_MAX && list[i] == 1) *mark = pb.mark();
        pb.lit(vocab[list[i]]);
      }
      pb.lit(q);
    };
    auto count = prompt_counter(memo, assemble, ap);
    // Count-weighted tokens per word ~ 3-4 for 6 random letters; the fit refines it.
    int64_t n = fit_units(count, budget, std::max<int64_t>(1, (budget - 100) / 4), budget * 2);
    if (n < 0) throw TooShort{};
    auto c = counts(n);
    if (c[3] <= c[4] || c[3] == 0) throw TooShort{};  // the top three must be distinct from the rest

    Built b;
    b.haystack = "words";
    b.outputs = {vocab[1], vocab[2], vocab[3]};
    build_marked(b, memo, keep_ids, assemble, n, ap);
    b.extra["vocab_size"] = V;
    b.extra["alpha"] = kAlpha;
    b.extra["counts_top4"] = std::vector<int64_t>(c.begin(), c.begin() + 4);
    return b;
  }
};

}  // namespace

std::unique_ptr<TaskGenerator> make_fwe(std::shared_ptr<const Ctx> ctx, const TaskInfo& info) {
  return std::make_unique<Fwe>(std::move(ctx), info);
}

}  // namespace lctx::ruler
