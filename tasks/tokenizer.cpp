#include "tasks/tokenizer.hpp"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "tasks/core.hpp"

namespace lctx {

Tokenizer::~Tokenizer() = default;

std::shared_ptr<const Tokenizer> Tokenizer::load(const std::string& path) {
  if (!file_exists(path)) throw Error("tokenizer " + path + ": no such file");
  std::string bytes = read_file(path);
  auto t = std::shared_ptr<Tokenizer>(new Tokenizer());
  t->sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  auto st = t->sp_->LoadFromSerializedProto(bytes);
  if (!st.ok() || t->sp_->GetPieceSize() <= 0)
    throw Error("tokenizer " + path + ": not a valid SentencePiece model (" + st.ToString() + ")");
  t->path_ = path;
  t->hash_ = hex64(fnv1a64(bytes));
  // Whitespace separability probe: "a b" == enc("a") + enc("b") at single spaces.
  const char* probes[][2] = {{"The committee", "approved it."}, {"magic-number:", "1234567."},
                             {"Hello,", "world!"}, {"x\ny", "z"}, {"a7b3c9d2-1f4e", "UUID"}};
  bool sep = true;
  for (auto& p : probes) {
    auto a = t->encode(p[0]), b = t->encode(p[1]);
    auto ab = t->encode(std::string(p[0]) + " " + p[1]);
    a.insert(a.end(), b.begin(), b.end());
    sep = sep && (a == ab);
  }
  t->separable_ = sep;
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  auto st = sp_->Encode(text, &ids);
  if (!st.ok()) throw Error("tokenizer: encode failed: " + st.ToString());
  return std::vector<int32_t>(ids.begin(), ids.end());
}

// Segments of a long text: cut at the first single space between non-space characters at or after every
// kSegmentBytes boundary. The cut points depend on the text alone (not on the thread count), so counts are
// reproducible everywhere. For whitespace-separable models a cut changes nothing in principle; in practice it
// also avoids SentencePiece's float32 score accumulation, which flips near-ties on multi-megabyte inputs.
static constexpr size_t kSegmentBytes = 16 << 10;

static std::vector<std::string_view> segments(std::string_view text) {
  std::vector<std::string_view> out;
  auto ws = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  size_t start = 0;
  while (start < text.size()) {
    size_t p = start + kSegmentBytes;
    while (p + 1 < text.size() && !(text[p] == ' ' && !ws(text[p - 1]) && !ws(text[p + 1]))) ++p;
    if (p + 1 >= text.size()) {
      out.push_back(text.substr(start));
      break;
    }
    out.push_back(text.substr(start, p - start));
    start = p + 1;
  }
  return out;
}

std::vector<int32_t> Tokenizer::encode_long(std::string_view text) const {
  if (!separable_ || text.size() <= 2 * kSegmentBytes) return encode(text);
  auto parts = segments(text);
  unsigned hw = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  if (text.size() < (1u << 20)) hw = 1;
  std::vector<std::vector<int32_t>> res(parts.size());
  std::atomic<size_t> next{0};
  std::exception_ptr err;
  std::mutex m;
  auto work = [&] {
    for (size_t i; (i = next++) < parts.size();) {
      try {
        res[i] = encode(parts[i]);
      } catch (...) {
        std::lock_guard<std::mutex> g(m);
        err = std::current_exception();
      }
    }
  };
  std::vector<std::thread> th;
  for (unsigned w = 1; w < hw; ++w) th.emplace_back(work);
  work();
  for (auto& t : th) t.join();
  if (err) std::rethrow_exception(err);
  size_t n = 0;
  for (auto& r : res) n += r.size();
  std::vector<int32_t> out;
  out.reserve(n);
  for (auto& r : res) out.insert(out.end(), r.begin(), r.end());
  return out;
}

int64_t Tokenizer::count(std::string_view text) const { return static_cast<int64_t>(encode_long(text).size()); }

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::vector<int> v;
  v.reserve(ids.size());
  const int n = sp_->GetPieceSize();
  for (int32_t id : ids)
    if (id >= 0 && id < n) v.push_back(id);
  std::string out;
  auto st = sp_->Decode(v, &out);
  if (!st.ok()) throw Error("tokenizer: decode failed: " + st.ToString());
  return out;
}

std::string Tokenizer::piece(int32_t id) const { return sp_->IdToPiece(id); }
int32_t Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }
int32_t Tokenizer::bos_id() const { return sp_->bos_id(); }
int32_t Tokenizer::eos_id() const { return sp_->eos_id(); }
int32_t Tokenizer::unk_id() const { return sp_->unk_id(); }
int32_t Tokenizer::pad_id() const { return sp_->pad_id(); }

}  // namespace lctx
