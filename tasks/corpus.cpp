#include "tasks/corpus.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/paths.hpp"
#include "core/files.hpp"

namespace fs = std::filesystem;

namespace lctx {

std::string Corpus::default_dir() { return data_dir() + "/sotu"; }

std::string_view Corpus::word(size_t i) const {
  return std::string_view(text_).substr(word_text_off_[i], word_text_off_[i + 1] - word_text_off_[i] - 1);
}

std::string_view Corpus::text(size_t a, size_t b) const {
  if (b <= a) return {};
  return std::string_view(text_).substr(word_text_off_[a], word_text_off_[b] - word_text_off_[a] - 1);
}

int64_t Corpus::sentence_tokens(size_t s) const { return tokens(sentence_begin(s), sentence_end(s)); }
std::string_view Corpus::sentence(size_t s) const { return text(sentence_begin(s), sentence_end(s)); }

// A word ends a sentence when it ends in . ! ? (closing quotes/brackets allowed after) and is not a known
// abbreviation or a single initial ("J."), and the next word starts a sentence (upper case, digit, quote).
static bool ends_sentence(std::string_view w, std::string_view next) {
  size_t e = w.size();
  while (e > 0 && (w[e - 1] == '"' || w[e - 1] == '\'' || w[e - 1] == ')' || w[e - 1] == ']')) --e;
  if (e == 0) return false;
  char c = w[e - 1];
  if (c != '.' && c != '!' && c != '?') return false;
  if (c == '.') {
    std::string_view core = w.substr(0, e - 1);
    while (!core.empty() && (core[0] == '"' || core[0] == '(' || core[0] == '\'')) core.remove_prefix(1);
    static const char* abbrev[] = {"Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr", "Gen", "Gov", "Sen", "Rep", "Hon",
                                   "Col", "Capt", "Lt", "Messrs", "No", "vs", "etc", "Co", "Inc", "U.S", "i.e", "e.g"};
    for (auto a : abbrev)
      if (core == a) return false;
    if (core.size() == 1 && std::isupper(static_cast<unsigned char>(core[0]))) return false;
  }
  if (next.empty()) return true;
  unsigned char n0 = static_cast<unsigned char>(next[0]);
  return std::isupper(n0) || std::isdigit(n0) || n0 == '"' || n0 == '\'' || n0 == '(' || n0 >= 0x80;
}

// Offset of the first byte that makes `s` not text (a NUL byte or invalid UTF-8), or npos.
static size_t first_non_text(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0) return i;
    size_t n = c < 0x80 ? 1 : (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3 : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
    if (n == 0 || i + n > s.size()) return i;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return i;
    i += n;
  }
  return std::string_view::npos;
}

static constexpr uint64_t kCacheMagic = 0x3230535250524f43ULL;  // "CORPRS02"

std::shared_ptr<const Corpus> Corpus::load(const std::string& dir, const Tokenizer& tok) {
  auto c = std::shared_ptr<Corpus>(new Corpus());
  c->build(dir, tok);
  return c;
}

void Corpus::build(const std::string& dir, const Tokenizer& tok) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error("haystack corpus " + dir + ": no such directory (run scripts/setup.sh or pass --haystack DIR)");
  std::vector<std::string> files;
  for (auto& e : list_dir(dir))
    if (e.is_file && fs::path(e.name).extension() == ".txt") files.push_back(e.path);
  std::sort(files.begin(), files.end());
  if (files.empty()) throw Error("haystack corpus " + dir + ": no .txt files");

  // Words of every file; a file boundary always ends a sentence.
  std::vector<std::pair<size_t, size_t>> spans;  // (offset, len) into raw
  std::vector<bool> file_end;
  std::string raw;
  uint64_t h = fnv1a64("lctx-corpus-v1");
  for (auto& f : files) {
    std::string body = read_file(f);
    if (size_t bad = first_non_text(body); bad != std::string_view::npos)
      throw Error("haystack corpus " + dir + ": " + f + " is not UTF-8 text (binary data at byte " +
                  std::to_string(bad) + "); a haystack folder holds plain-text .txt files");
    h = hash_combine(h, fnv1a64(fs::path(f).filename().string()));
    h = hash_combine(h, fnv1a64(body));
    size_t base = raw.size();
    raw += body;
    raw += ' ';
    size_t i = 0, n = body.size();
    size_t first = spans.size();
    while (i < n) {
      while (i < n && std::isspace(static_cast<unsigned char>(body[i]))) ++i;
      size_t s = i;
      while (i < n && !std::isspace(static_cast<unsigned char>(body[i]))) ++i;
      if (i > s) {
        spans.emplace_back(base + s, i - s);
        file_end.push_back(false);
      }
    }
    if (spans.size() > first) file_end.back() = true;
  }
  if (spans.empty()) throw Error("haystack corpus " + dir + ": the .txt files contain no words");
  hash_ = hex64(h);
  tok_hash_ = tok.hash();

  // Text buffer: words joined by single spaces.
  size_t total = 0;
  for (auto& s : spans) total += s.second + 1;
  text_.reserve(total);
  word_text_off_.reserve(spans.size() + 1);
  for (auto& s : spans) {
    word_text_off_.push_back(static_cast<int64_t>(text_.size()));
    text_.append(raw, s.first, s.second);
    text_ += ' ';
  }
  word_text_off_.push_back(static_cast<int64_t>(text_.size()));
  std::string().swap(raw);
  const size_t nw = spans.size();

  std::string cache = cache_dir() + "/corpus2-" + hash_ + "-" + tok_hash_ + ".bin";
  if (load_cache(cache) && word_id_off_.size() == nw + 1) return;

  // Sentences.
  sent_first_word_.clear();
  sent_first_word_.push_back(0);
  for (size_t i = 0; i + 1 < nw; ++i)
    if (file_end[i] || ends_sentence(word(i), word(i + 1))) sent_first_word_.push_back(i + 1);

  // Token ids per unique word (encoded alone: SentencePiece's dummy prefix makes it the in-text form).
  std::unordered_map<std::string_view, std::pair<int64_t, int32_t>> dict;  // word -> (offset in uniq ids, count)
  std::unordered_map<std::string_view, uint32_t> kinds;
  std::vector<int32_t> uniq;
  word_id_off_.assign(nw + 1, 0);
  kind_.assign(nw, 0);
  ids_.clear();
  for (size_t i = 0; i < nw; ++i) {
    std::string_view w = word(i);
    auto it = dict.find(w);
    if (it == dict.end()) {
      auto v = tok.encode(w);
      it = dict.emplace(w, std::make_pair(static_cast<int64_t>(uniq.size()), static_cast<int32_t>(v.size()))).first;
      uniq.insert(uniq.end(), v.begin(), v.end());
      kinds.emplace(w, static_cast<uint32_t>(kinds.size()));
    }
    kind_[i] = kinds.at(w);
    word_id_off_[i] = static_cast<int64_t>(ids_.size());
    ids_.insert(ids_.end(), uniq.begin() + it->second.first, uniq.begin() + it->second.first + it->second.second);
  }
  word_id_off_[nw] = static_cast<int64_t>(ids_.size());
  num_kinds_ = kinds.size();
  try {
    ensure_dir(cache_dir());
    save_cache(cache);
  } catch (const Error&) {
    // A read-only data folder only costs the cache.
  }
}

template <class T>
static void put_vec(std::string& out, const std::vector<T>& v) {
  uint64_t n = v.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out.append(reinterpret_cast<const char*>(v.data()), n * sizeof(T));
}

template <class T>
static bool get_vec(const std::string& in, size_t& pos, std::vector<T>& v) {
  if (pos + 8 > in.size()) return false;
  uint64_t n;
  std::memcpy(&n, in.data() + pos, 8);
  pos += 8;
  if (n > (in.size() - pos) / sizeof(T)) return false;
  v.resize(n);
  std::memcpy(v.data(), in.data() + pos, n * sizeof(T));
  pos += n * sizeof(T);
  return true;
}

void Corpus::save_cache(const std::string& file) const {
  std::string out;
  out.append(reinterpret_cast<const char*>(&kCacheMagic), 8);
  std::vector<uint64_t> sents(sent_first_word_.begin(), sent_first_word_.end());
  put_vec(out, word_id_off_);
  put_vec(out, ids_);
  put_vec(out, sents);
  put_vec(out, kind_);
  write_file_atomic(file, out);
}

bool Corpus::load_cache(const std::string& file) {
  if (!file_exists(file)) return false;
  std::string in;
  try {
    in = read_file(file);
  } catch (const Error&) {
    return false;
  }
  size_t pos = 8;
  uint64_t magic = 0;
  if (in.size() < 8) return false;
  std::memcpy(&magic, in.data(), 8);
  std::vector<int64_t> off;
  std::vector<int32_t> ids;
  std::vector<uint64_t> sents;
  std::vector<uint32_t> kinds;
  if (magic != kCacheMagic || !get_vec(in, pos, off) || !get_vec(in, pos, ids) || !get_vec(in, pos, sents) ||
      !get_vec(in, pos, kinds) || pos != in.size() || off.empty() || off.back() != static_cast<int64_t>(ids.size()) ||
      sents.empty() || kinds.size() + 1 != off.size())
    return false;  // stale or corrupt cache: rebuilt
  uint32_t nk = 0;
  for (uint32_t k : kinds) {
    if (k > nk) return false;  // numbered by first appearance
    if (k == nk) ++nk;
  }
  num_kinds_ = nk;
  kind_ = std::move(kinds);
  word_id_off_ = std::move(off);
  ids_ = std::move(ids);
  sent_first_word_.assign(sents.begin(), sents.end());
  return true;
}

}  // namespace lctx
