// The haystack corpus: .txt files split into whitespace-delimited words and sentences once, with the token
// ids of every word cached per tokenizer, so that long haystacks are assembled by copying bytes and ids.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tasks/tokenizer.hpp"

namespace lctx {

class Corpus {
 public:
  // dir: a folder of .txt files (read in name order, whitespace normalised). The word/id table is cached in
  // cache_dir() under a key of (corpus bytes hash, tokenizer hash). Throws Error if dir has no .txt files.
  static std::shared_ptr<const Corpus> load(const std::string& dir, const Tokenizer& tok);
  // Default corpus: data_dir()/sotu (State of the Union addresses, fetched by scripts/setup.sh).
  static std::string default_dir();

  size_t num_words() const { return word_text_off_.size() - 1; }
  size_t num_sentences() const { return sent_first_word_.size(); }
  int64_t num_tokens() const { return static_cast<int64_t>(ids_.size()); }

  // Word i (0 <= i < num_words): its text and its token ids as encoded alone (with SentencePiece's dummy
  // prefix, i.e. as it encodes after a space in running text).
  std::string_view word(size_t i) const;
  const int32_t* word_ids(size_t i) const { return ids_.data() + word_id_off_[i]; }
  int32_t word_tokens(size_t i) const { return static_cast<int32_t>(word_id_off_[i + 1] - word_id_off_[i]); }
  // Sentence s covers words [sentence_begin(s), sentence_begin(s+1)) (the last ends at num_words()).
  size_t sentence_begin(size_t s) const { return sent_first_word_[s]; }
  size_t sentence_end(size_t s) const { return s + 1 < sent_first_word_.size() ? sent_first_word_[s + 1] : num_words(); }
  int64_t sentence_tokens(size_t s) const;
  std::string_view sentence(size_t s) const;  // words of s joined by single spaces

  // Words [a, b) joined by single spaces (no wrap-around: b <= num_words()). A view into one buffer.
  std::string_view text(size_t a, size_t b) const;
  // Token ids of words [a, b): contiguous in one buffer.
  const int32_t* ids(size_t a) const { return ids_.data() + word_id_off_[a]; }
  int64_t tokens(size_t a, size_t b) const { return word_id_off_[b] - word_id_off_[a]; }

  // Distinct-word index of word i (equal words, equal index; first appearances numbered 0, 1, ...).
  uint32_t kind(size_t i) const { return kind_[i]; }
  size_t num_kinds() const { return num_kinds_; }

  const std::string& hash() const { return hash_; }       // corpus bytes hash
  const std::string& tokenizer_hash() const { return tok_hash_; }

 private:
  Corpus() = default;
  void build(const std::string& dir, const Tokenizer& tok);
  bool load_cache(const std::string& file);
  void save_cache(const std::string& file) const;

  std::string text_;                      // all words joined by ' ' (plus a trailing ' ')
  std::vector<int64_t> word_text_off_;    // num_words+1: start of word i in text_ (end = next start - 1)
  std::vector<int64_t> word_id_off_;      // num_words+1: start of word i in ids_
  std::vector<int32_t> ids_;
  std::vector<size_t> sent_first_word_;
  std::vector<uint32_t> kind_;
  size_t num_kinds_ = 0;
  std::string hash_, tok_hash_;
};

}  // namespace lctx
