// SentencePiece wrapper. Any SentencePiece .model works (lctx's default, Llama-2, Mistral, Gemma ...).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lctx {

class Tokenizer {
 public:
  // Throws Error("tokenizer FILE: ...") when the file is missing or not a valid SentencePiece model.
  static std::shared_ptr<const Tokenizer> load(const std::string& path);
  ~Tokenizer();

  std::vector<int32_t> encode(std::string_view text) const;
  // Token count of `text`. Texts over 32 KB are encoded in whitespace-aligned segments of ~16 KB (cut points
  // depend on the text only) on several threads when the model is whitespace-separable; this equals the sum
  // of per-word encodings (tests), and avoids SentencePiece's float-precision drift on multi-MB single calls.
  int64_t count(std::string_view text) const;
  // The ids whose size count() returns (same segmentation).
  std::vector<int32_t> encode_long(std::string_view text) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string piece(int32_t id) const;

  int32_t vocab_size() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t unk_id() const;
  int32_t pad_id() const;  // -1 if the model has none
  const std::string& path() const { return path_; }
  // 16 hex digits identifying the model file bytes; stored in samples and checkpoints.
  const std::string& hash() const { return hash_; }
  // True when "a b" encodes as encode("a") + encode("b") at every single-space boundary (split_by_whitespace
  // with a dummy prefix): lets long texts be counted in parallel pieces.
  bool whitespace_separable() const { return separable_; }

 private:
  Tokenizer() = default;
  void* sp_ = nullptr;  // handle of the SentencePiece shim (tasks/spm_shim), loaded with dlopen
  std::string path_, hash_;
  bool separable_ = false;
};

}  // namespace lctx
