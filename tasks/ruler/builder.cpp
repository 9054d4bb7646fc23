#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "tasks/ruler/ruler.hpp"

namespace lctx::ruler {

ChunkMemo& ChunkMemo::local(const Tokenizer& tok) {
  thread_local std::unique_ptr<ChunkMemo> memo;
  thread_local std::string hash;
  if (!memo || memo->tok_ptr() != &tok || hash != tok.hash() || memo->map_.size() > (size_t(4) << 20)) {
    memo = std::make_unique<ChunkMemo>(tok);
    hash = tok.hash();
  }
  return *memo;
}

const std::vector<int32_t>& ChunkMemo::get(std::string_view chunk) {
  auto it = map_.find(chunk);
  if (it != map_.end()) return it->second;
  keys_.emplace_back(chunk);
  std::string_view k = keys_.back();
  return map_.emplace(k, tok_.encode(k)).first->second;
}

// Cut points of a text: single spaces with a non-whitespace character on both sides.
static std::vector<size_t> cuts_of(std::string_view s) {
  std::vector<size_t> c;
  for (size_t p = 1; p + 1 < s.size(); ++p)
    if (s[p] == ' ' && !is_ws(s[p - 1]) && !is_ws(s[p + 1])) c.push_back(p);
  return c;
}

Line Line::make(std::string text, ChunkMemo& memo) {
  Line l;
  l.text = std::move(text);
  auto c = cuts_of(l.text);
  if (c.empty()) return l;
  l.has_cut = true;
  l.head = l.text.substr(0, c.front());
  l.tail = l.text.substr(c.back() + 1);
  if (c.size() > 1) {
    l.mid_text = l.text.substr(c.front() + 1, c.back() - c.front() - 1);
    size_t a = c.front() + 1;
    for (size_t i = 1; i < c.size(); ++i) {
      auto& ids = memo.get(std::string_view(l.text).substr(a, c[i] - a));
      l.mid_ids.insert(l.mid_ids.end(), ids.begin(), ids.end());
      a = c[i] + 1;
    }
  }
  return l;
}

static thread_local std::string spare_text;
static thread_local int64_t oc_limit = INT64_MAX;
void PromptBuilder::one_call_limit(int64_t limit) { oc_limit = limit; }
std::string take_text_buffer() {
  std::string s = std::move(spare_text);
  spare_text = std::string();
  s.clear();
  return s;
}
void give_text_buffer(std::string&& s) {
  if (s.capacity() > spare_text.capacity()) spare_text = std::move(s);
}

static thread_local int64_t window_lo = 1, window_hi = 0;
void set_accept_window(int64_t lo, int64_t hi) {
  window_lo = lo;
  window_hi = hi;
}
bool accept_window_set() { return window_lo <= window_hi; }
bool outside_accept_window(int64_t c) { return accept_window_set() && (c < window_lo || c > window_hi); }

PromptBuilder::PromptBuilder(ChunkMemo& memo, bool keep_text, bool keep_ids, OneCallMode one_call)
    : memo_(memo), tok_(memo.tokenizer()), keep_text_(keep_text), keep_ids_(keep_ids),
      separable_(memo.tokenizer().whitespace_separable()) {
  if (keep_text) out_ = take_text_buffer();
  static const bool off = std::getenv("LCTX_NO_COMPOSED_COUNT") != nullptr;
  const bool mode = one_call == OneCallMode::always || (one_call == OneCallMode::with_text && keep_text);
  if (mode && !keep_ids && separable_ && tok_.one_call_simulated() && !off)
    oc_ = std::make_unique<OneCallCounter>(tok_);
  if (oc_) oc_->stop_after(oc_limit);
}

size_t PromptBuilder::mark() {
  marks_.push_back(Mark{bytes_});
  if (oc_) oc_->mark(bytes_);
  return marks_.size() - 1;
}

int64_t PromptBuilder::one_call_tokens() const { return oc_ && finished_ ? oc_->finish() : -1; }
int64_t PromptBuilder::mark_one_call_token(size_t m) const { return oc_ && finished_ ? oc_->mark_token(m) : -1; }

// Corpus words [a, b) into the one-call counter without hashing them: a per-thread table from the corpus's
// distinct-word index to the counter's word id.
void PromptBuilder::oc_corpus_words(const Corpus& c, size_t a, size_t b, int64_t tok_base) {
  struct Table {
    const Corpus* corpus = nullptr;
    const Tokenizer* tok = nullptr;
    uint64_t gen = 0;
    std::vector<uint32_t> ids;
  };
  thread_local Table t;
  if (t.corpus != &c || t.tok != &tok_ || t.gen != oc_->generation() || t.ids.size() != c.num_kinds()) {
    t.corpus = &c;
    t.tok = &tok_;
    t.gen = oc_->generation();
    t.ids.assign(c.num_kinds(), UINT32_MAX);
    // Every distinct corpus word at once (tens of thousands: a one-time cost per thread that would otherwise
    // be paid piecemeal by the first samples), in the order of first appearance.
    for (size_t i = 0, seen = 0; i < c.num_words() && seen < c.num_kinds(); ++i)
      if (t.ids[c.kind(i)] == UINT32_MAX) {
        t.ids[c.kind(i)] = oc_->intern(c.word(i));
        ++seen;
      }
  }
  uint32_t buf[256];
  size_t n = 0;
  for (size_t i = a; i < b; ++i) {
    uint32_t& id = t.ids[c.kind(i)];
    if (id == UINT32_MAX) id = oc_->intern(c.word(i));
    buf[n++] = id;
    if (n == 256) {
      oc_->words(buf, n);
      n = 0;
      if ((curve_words_ += 256) >= 4096) {
        curve_words_ = 0;
        curve_.emplace_back(tok_base + c.tokens(a, i + 1), oc_->count());
      }
    }
  }
  oc_->words(buf, n);
}

// Byte length of a piece in the text ("▁" stands for one space; "<0xHH>" byte pieces for one byte).
static int64_t piece_bytes(const std::string& p) {
  if (p.size() == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>') return 1;
  int64_t n = 0;
  for (size_t i = 0; i < p.size();) {
    if (i + 2 < p.size() && static_cast<unsigned char>(p[i]) == 0xE2 && static_cast<unsigned char>(p[i + 1]) == 0x96 &&
        static_cast<unsigned char>(p[i + 2]) == 0x81) {
      n += 1;
      i += 3;
    } else {
      n += 1;
      i += 1;
    }
  }
  return n;
}

void PromptBuilder::resolve(std::string_view chunk, int64_t start, int64_t first_token, const std::vector<int32_t>& ids) {
  const int64_t end = start + static_cast<int64_t>(chunk.size());
  while (first_open_mark_ < marks_.size() && marks_[first_open_mark_].offset < end) {
    Mark& m = marks_[first_open_mark_++];
    const int64_t rel = m.offset - start;
    int64_t pos = 0, tok = 0;
    if (!ids.empty() && tok_.piece(ids[0]).rfind("\xE2\x96\x81", 0) == 0) pos = -1;  // dummy-prefix space
    int64_t found = static_cast<int64_t>(ids.size()) - 1;
    for (; tok < static_cast<int64_t>(ids.size()); ++tok) {
      int64_t len = piece_bytes(tok_.piece(ids[tok]));
      if (rel < pos + len) {
        found = tok;
        break;
      }
      pos += len;
    }
    m.token = first_token + std::max<int64_t>(0, found);
  }
}

void PromptBuilder::emit(std::string_view chunk, int64_t start) {
  if (chunk.empty()) return;
  const int64_t first = tokens_;
  if (separable_) {
    const auto& ids = memo_.get(chunk);
    tokens_ += static_cast<int64_t>(ids.size());
    if (keep_ids_) ids_.insert(ids_.end(), ids.begin(), ids.end());
    if (first_open_mark_ < marks_.size()) resolve(chunk, start, first, ids);
  } else {
    auto ids = tok_.encode_long(chunk);
    tokens_ += static_cast<int64_t>(ids.size());
    if (keep_ids_) ids_.insert(ids_.end(), ids.begin(), ids.end());
    if (first_open_mark_ < marks_.size()) resolve(chunk, start, first, ids);
  }
}

void PromptBuilder::emit_pending() {
  if (pend_known_ >= 0 && !keep_ids_ && first_open_mark_ == marks_.size()) tokens_ += pend_known_;
  else emit(pend_, pend_start_);
}

void PromptBuilder::cut_word(std::string_view w, int64_t w_tokens, uint32_t oc_id, size_t* mark) {
  emit_pending();
  pend_start_ += static_cast<int64_t>(pend_.size()) + 1;
  bytes_ += 1;
  if (keep_text_) out_ += ' ';
  if (mark) *mark = this->mark();
  pend_.assign(w.data(), w.size());
  pend_known_ = w_tokens;
  bytes_ += static_cast<int64_t>(w.size());
  if (keep_text_) out_ += w;
  if (oc_) oc_->space_word(oc_id, w);
}

// memcpy for the short strings of a word list: fixed-size moves instead of a call per word.
static inline void copy_short(char* d, const char* s, size_t n) {
  if (n >= 8 && n <= 16) {
    std::memcpy(d, s, 8);
    std::memcpy(d + n - 8, s + n - 8, 8);
  } else if (n >= 4 && n < 8) {
    std::memcpy(d, s, 4);
    std::memcpy(d + n - 4, s + n - 4, 4);
  } else if (n < 4) {
    for (size_t k = 0; k < n; ++k) d[k] = s[k];
  } else {
    std::memcpy(d, s, n);
  }
}

void PromptBuilder::cut_words(const std::string_view* w, const int32_t* w_tokens, const uint32_t* oc_ids, size_t n) {
  // An open mark (on the pending chunk, a cut_word's) is resolved by the chunks that follow, one by one.
  for (; n > 0 && first_open_mark_ < marks_.size(); ++w, ++w_tokens, ++oc_ids, --n) cut_word(*w, *w_tokens, *oc_ids);
  if (n == 0) return;
  emit_pending();
  int64_t tokens_before_last = 0, before_last = 0;  // bytes of the words before the last, each with the space before it
  for (size_t i = 0; i + 1 < n; ++i) {
    tokens_before_last += w_tokens[i];
    before_last += 1 + static_cast<int64_t>(w[i].size());
  }
  const int64_t added = before_last + 1 + static_cast<int64_t>(w[n - 1].size());
  if (keep_text_) {
    size_t at = out_.size();
    out_.resize(at + static_cast<size_t>(added));
    char* p = out_.data() + at;
    for (size_t i = 0; i < n; ++i) {
      *p++ = ' ';
      copy_short(p, w[i].data(), w[i].size());
      p += w[i].size();
    }
  }
  pass_words(tokens_before_last, before_last, w[n - 1], w_tokens[n - 1]);
  if (oc_) oc_->space_words(oc_ids, n, w[n - 1]);
}

void PromptBuilder::pass_words(int64_t tokens_before_last, int64_t bytes_before_last, std::string_view last,
                               int64_t last_tokens) {
  tokens_ += tokens_before_last;
  pend_start_ += static_cast<int64_t>(pend_.size()) + 1 + bytes_before_last;
  bytes_ += bytes_before_last + 1 + static_cast<int64_t>(last.size());
  pend_.assign(last.data(), last.size());
  pend_known_ = last_tokens;
}

void PromptBuilder::cut_words_counted(int64_t tokens_before_last, int64_t bytes_before_last, const uint32_t* oc_ids,
                                      size_t n, std::string_view last, int64_t last_tokens) {
  if (n == 0) return;
  if (keep_text_ || keep_ids_ || first_open_mark_ < marks_.size())
    throw Error("internal: PromptBuilder::cut_words_counted with text, ids or an open mark");
  emit_pending();
  pass_words(tokens_before_last, bytes_before_last, last, last_tokens);
  if (oc_) oc_->space_words(oc_ids, n, last);
}

void PromptBuilder::cut_words_appended(int64_t tokens_before_last, int64_t bytes_before_last, std::string_view last,
                                       int64_t last_tokens) {
  if (!keep_text_ || keep_ids_ || oc_ || first_open_mark_ < marks_.size())
    throw Error("internal: PromptBuilder::cut_words_appended without text, or with ids, a one-call count or an open mark");
  emit_pending();
  pass_words(tokens_before_last, bytes_before_last, last, last_tokens);
}

void PromptBuilder::lit(std::string_view s) {
  if (s.empty()) return;
  if (keep_text_) out_ += s;
  if (oc_) oc_->text(s);
  size_t scan = pend_.empty() ? 1 : pend_.size();  // the last old char may be a space that is now a cut
  if (scan > 1) scan -= 1;
  pend_ += s;
  pend_known_ = -1;
  bytes_ += static_cast<int64_t>(s.size());
  if (!separable_) return;
  size_t begin = 0;
  for (size_t p = std::max<size_t>(scan, 1); p + 1 < pend_.size(); ++p) {
    if (pend_[p] == ' ' && !is_ws(pend_[p - 1]) && !is_ws(pend_[p + 1])) {
      emit(std::string_view(pend_).substr(begin, p - begin), pend_start_ + static_cast<int64_t>(begin));
      begin = p + 1;
    }
  }
  if (begin) {
    pend_.erase(0, begin);
    pend_start_ += static_cast<int64_t>(begin);
  }
}

void PromptBuilder::flush_at_cut() {
  // pend_ ends with a non-space character and a cut space follows: emit it, account for the space.
  emit_pending();
  pend_start_ += static_cast<int64_t>(pend_.size()) + 1;
  pend_.clear();
  pend_known_ = -1;
  bytes_ += 1;
  if (keep_text_) out_ += ' ';
  if (oc_) oc_->text(" ");
}

void PromptBuilder::words(const Corpus& c, size_t a, size_t b) {
  if (b <= a) return;
  if (!separable_) {
    lit(c.text(a, b));
    return;
  }
  lit(c.word(a));
  if (b - a == 1) return;
  flush_at_cut();
  if (b - a > 2) {
    // Whole words a+1 .. b-2: cached ids, no tokenizer call.
    std::string_view mid = c.text(a + 1, b - 1);
    tokens_ += c.tokens(a + 1, b - 1);
    if (keep_ids_) ids_.insert(ids_.end(), c.ids(a + 1), c.ids(a + 1) + c.tokens(a + 1, b - 1));
    if (keep_text_) {
      out_ += mid;
      out_ += ' ';
    }
    if (oc_) oc_corpus_words(c, a + 1, b - 1, tokens_ - c.tokens(a + 1, b - 1));
    bytes_ += static_cast<int64_t>(mid.size()) + 1;
    pend_start_ += static_cast<int64_t>(mid.size()) + 1;
  }
  std::string_view last = c.word(b - 1);
  pend_.assign(last.data(), last.size());
  pend_known_ = -1;
  bytes_ += static_cast<int64_t>(last.size());
  if (keep_text_) out_ += last;
  if (oc_) oc_->text(last);
}

void PromptBuilder::line(const Line& l) {
  if (!separable_ || !l.has_cut) {
    lit(l.text);
    return;
  }
  lit(l.head);
  flush_at_cut();
  if (!l.mid_text.empty()) {
    tokens_ += static_cast<int64_t>(l.mid_ids.size());
    if (keep_ids_) ids_.insert(ids_.end(), l.mid_ids.begin(), l.mid_ids.end());
    if (keep_text_) {
      out_ += l.mid_text;
      out_ += ' ';
    }
    bytes_ += static_cast<int64_t>(l.mid_text.size()) + 1;
    pend_start_ += static_cast<int64_t>(l.mid_text.size()) + 1;
    if (oc_) {
      const Line& ml = l;
      if (ml.mid_words_gen != oc_->generation()) {
        ml.mid_words.clear();
        std::string_view m = ml.mid_text;
        for (size_t p = 0;;) {
          size_t sp = m.find(' ', p);
          ml.mid_words.push_back(oc_->intern(m.substr(p, sp == std::string_view::npos ? m.npos : sp - p)));
          if (sp == std::string_view::npos) break;
          p = sp + 1;
        }
        ml.mid_words_gen = oc_->generation();
      }
      oc_->words(ml.mid_words.data(), ml.mid_words.size());
    }
  }
  pend_ = l.tail;
  pend_known_ = -1;
  bytes_ += static_cast<int64_t>(l.tail.size());
  if (keep_text_) out_ += l.tail;
  if (oc_) oc_->text(l.tail);
}

void PromptBuilder::repeat(std::string_view sep, const Line& l, int64_t k) {
  if (k <= 0) return;
  lit(sep);
  line(l);
  if (k == 1) return;
  if (oc_ && !keep_ids_ && l.has_cut && first_open_mark_ == marks_.size()) {
    // Text kept, ids not: one more (sep + line) the ordinary way, then the state repeats exactly (pending
    // chunk == l.tail): the remaining k - 2 copies are appended as bytes and counted at once, per chunk and
    // (OneCallCounter::repeat) in one call.
    const int64_t t0 = tokens_, b0 = bytes_;
    lit(sep);
    line(l);
    if (k == 2) return;
    const int64_t dt = tokens_ - t0, db = bytes_ - b0;
    std::string unit(sep);
    unit += l.text;
    if (keep_text_) {
      out_.reserve(out_.size() + static_cast<size_t>(k - 2) * unit.size());
      for (int64_t i = 2; i < k; ++i) out_ += unit;
    }
    oc_->repeat(unit, k - 2, &l.repeat_ids);
    tokens_ += dt * (k - 2);
    bytes_ += db * (k - 2);
    pend_start_ += db * (k - 2);
    return;
  }
  if (keep_text_ || keep_ids_ || !separable_ || !l.has_cut || first_open_mark_ < marks_.size()) {
    if (keep_text_) out_.reserve(out_.size() + static_cast<size_t>(k - 1) * (sep.size() + l.text.size()));
    for (int64_t i = 1; i < k; ++i) {
      lit(sep);
      line(l);
    }
    return;
  }
  // Counting only: after one (sep + line) the state repeats exactly (pending chunk == l.tail).
  const int64_t t0 = tokens_, b0 = bytes_;
  lit(sep);
  line(l);
  const int64_t dt = tokens_ - t0, db = bytes_ - b0;
  tokens_ += dt * (k - 2);
  bytes_ += db * (k - 2);
  pend_start_ += db * (k - 2);
}

void PromptBuilder::finish() {
  if (finished_) return;
  finished_ = true;
  emit_pending();
  pend_start_ += static_cast<int64_t>(pend_.size());
  pend_.clear();
  for (; first_open_mark_ < marks_.size(); ++first_open_mark_) marks_[first_open_mark_].token = tokens_;
  if (oc_) oc_->finish();
}

int64_t fit_units(const std::function<int64_t(int64_t)>& T, int64_t budget, int64_t guess, int64_t n_max) {
  int64_t t0 = T(0);
  if (t0 > budget) return -1;
  int64_t lo = 0, tlo = t0, hi = n_max + 1, thi = 0;
  bool hi_known = false;
  if (n_max == 0) return 0;
  int64_t n = std::clamp<int64_t>(guess, 1, n_max);
  int step = 0;
  while (true) {
    int64_t t = T(n);
    if (t <= budget) {
      lo = n;
      tlo = t;
    } else {
      hi = n;
      thi = t;
      hi_known = true;
    }
    if (hi - lo <= 1) break;
    // Interpolate on the bracket (or extrapolate from the origin); bisect every third step to bound the
    // number of evaluations when T is far from linear.
    double rate = hi_known ? double(thi - tlo) / double(hi - lo) : (lo > 0 ? double(tlo - t0) / double(lo) : 0.0);
    int64_t next;
    if (++step % 3 == 0 || rate <= 0) {
      next = hi_known ? lo + (hi - lo) / 2 : std::min(n_max, std::max<int64_t>(lo * 2, lo + 1));
    } else {
      next = lo + static_cast<int64_t>(std::floor(double(budget - tlo) / rate));
      if (!hi_known) next += 1 + (next - lo) / 64;  // overshoot slightly to find an upper bracket
    }
    n = std::clamp<int64_t>(next, lo + 1, hi - 1);
  }
  return lo;
}

}  // namespace lctx::ruler
