// The search for a build target whose one-call count (Tokenizer::count_one_call of the whole prompt) lands in
// [budget - slack, budget]. Generators fit their haystacks with per-chunk counts, which SentencePiece's float
// drift makes differ from the one-call count: by tens of tokens at 1M, thousands at 8M, and by +40% at 32M,
// where the running score is so large that most piece scores round away and prompts split into many more
// pieces. Attempts move the target by the miss while that converges; once attempts have landed on both sides
// and the miss stops halving, the next target is interpolated inside that bracket (every third time halved),
// which converges however far from linear the count is.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <utility>
#include <vector>

namespace lctx {

class Retarget {
 public:
  Retarget(int64_t budget, int64_t slack) : budget_(budget), slack_(slack), target_(budget) {}
  int64_t target() const { return target_; }
  void start_at(int64_t target) { target_ = target; }  // the first target (default: the budget)
  int attempts() const { return attempts_; }
  // Records the one-call count of the prompt built for target(). True: within bounds, keep it. False: target()
  // moved to the next candidate, or, when exhausted(), no target is left.
  // With the build's drift curve (PromptBuilder::one_call_curve: per-chunk and one-call counts of prefixes of
  // the prompt, whose per-chunk count was per_chunk), the next target is read off the curve: where this very
  // text's one-call count reaches the aim (the essay text of a rebuild is the same up to the moved needles).
  // partial: the count stopped early (past a limit), so the curve ends before the prompt does; count is then
  // only known to be over the budget.
  bool accept(int64_t count, int64_t per_chunk = -1, const std::vector<std::pair<int64_t, int64_t>>* curve = nullptr,
              bool partial = false) {
    if (fallback_) return true;  // the closest prompt under the budget, rebuilt after exhaustion
    if (count <= budget_ && count >= budget_ - slack_) return true;
    if (count <= budget_ && count > best_under_count_) best_under_count_ = count, best_under_ = target_;
    ++attempts_;
    if (count > budget_) {
      if (!hi_known_ || target_ < hi_) hi_ = target_, c_hi_ = count, hi_known_ = true;
    } else {
      if (!lo_known_ || target_ > lo_) lo_ = target_, c_lo_ = count, lo_known_ = true;
    }
    const int64_t aim = over_ > 0 ? budget_ + over_ : budget_ - slack_ / 4;
    int64_t next = target_ + (aim - count);
    if (std::abs(aim - count) > budget_ / 16) {
      // Far off (32M): the count is then roughly proportional to the target.
      next = static_cast<int64_t>(double(target_) * double(aim) / double(count));
    }
    const int64_t from_curve = attempts_ <= 4 ? on_curve(aim, count, per_chunk, curve, partial) : -1;
    if (from_curve > 0 && (!lo_known_ || from_curve > lo_) && (!hi_known_ || from_curve < hi_)) {
      next = from_curve;
    } else if (lo_known_ && hi_known_) {
      if (hi_ - lo_ <= 1) return exhausted_ = true, false;
      // The miss-sized step while it converges (it does up to 8M, where the drift is nearly constant);
      // interpolation once it leaves the bracket, stops halving the miss, or has had 8 tries: the secant
      // through the last two attempts when it falls inside the bracket, else through the bracket's ends,
      // and every fourth time the bracket's middle.
      const bool inside = next > lo_ && next < hi_;
      const bool slow = prev_miss_ != 0 && 2 * std::abs(aim - count) > std::abs(prev_miss_);
      if (!inside || slow || attempts_ > 8) {
        next = -1;
        if (++bracketed_ % 4 != 0) {
          if (prev_count_ != count && prev_target_ != target_) {
            const double slope = double(count - prev_count_) / double(target_ - prev_target_);
            if (slope > 0) next = target_ + static_cast<int64_t>(std::llround(double(aim - count) / slope));
          }
          if (!(next > lo_ && next < hi_) && c_hi_ > c_lo_)
            next = lo_ + static_cast<int64_t>(double(aim - c_lo_) / double(c_hi_ - c_lo_) * double(hi_ - lo_));
        }
        if (!(next > lo_ && next < hi_)) next = lo_ + (hi_ - lo_) / 2;
      }
    } else if (next <= 0) {
      next = 1;
    }
    if (attempts_ > kMaxAttempts || next == target_) return exhausted_ = true, false;
    prev_miss_ = aim - count;
    prev_count_ = count;
    prev_target_ = target_;
    target_ = next;
    return false;
  }
  bool exhausted() const { return exhausted_; }
  // Aim `over` tokens above the budget (the caller can cut the prompt down to the window: Built::trim), or
  // (0) inside the window.
  void set_over(int64_t over) { over_ = over; }
  // After exhaustion: switches target() to the attempt whose count came closest under the budget (false when
  // every attempt was over it). Used where adjacent haystack sizes differ by more than the slack (fwe's
  // reshuffled list at 32M): such a prompt is shorter than budget - slack, and says so in its metadata.
  bool fall_back() {
    if (best_under_ < 0) return false;
    fallback_ = true;
    exhausted_ = false;
    target_ = best_under_;
    return true;
  }
  bool fell_back() const { return fallback_; }

 private:
  // The target whose prompt the curve predicts to reach `aim` one-call tokens (-1: the curve does not reach
  // it). The part after the last curve point (needles, question) is taken to add what it added this time (a
  // partial curve: nothing, the question being short).
  int64_t on_curve(int64_t aim, int64_t count, int64_t per_chunk, const std::vector<std::pair<int64_t, int64_t>>* curve,
                   bool partial) const {
    if (!curve || curve->size() < 2 || per_chunk < 0) return -1;
    const auto& c = *curve;
    const int64_t want = partial ? aim : aim - (count - c.back().second);
    size_t j = 1;
    while (j < c.size() && c[j].second < want) ++j;
    if (j == c.size() || c[j - 1].second > want || c[j].second == c[j - 1].second) return -1;
    const double f = double(want - c[j - 1].second) / double(c[j].second - c[j - 1].second);
    const int64_t p = c[j - 1].first + static_cast<int64_t>(std::llround(f * double(c[j].first - c[j - 1].first)));
    return partial ? p : p + (target_ - c.back().first);
  }
  static constexpr int kMaxAttempts = 40;
  int64_t budget_, slack_, target_, over_ = 0;
  int attempts_ = 0, bracketed_ = 0;
  bool lo_known_ = false, hi_known_ = false, exhausted_ = false, fallback_ = false;
  int64_t best_under_ = -1, best_under_count_ = -1;
  int64_t lo_ = 0, hi_ = 0, c_lo_ = 0, c_hi_ = 0, prev_miss_ = 0, prev_count_ = 0, prev_target_ = -1;
};

}  // namespace lctx
