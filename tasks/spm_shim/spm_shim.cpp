// A C interface over SentencePiece, built as its own shared library (liblctx_spm.so) and loaded by
// tasks/tokenizer.cpp with dlopen(RTLD_LOCAL | RTLD_DEEPBIND).
//
// Why: Debian's libsentencepiece.so exports the symbols of the protobuf-lite copy it bundles (3.14), and
// LibTorch brings libprotobuf.so (3.21). Linked into one binary, whichever comes first in the link order
// wins every protobuf symbol for both, and the process crashes at start-up (or aborts on the version check).
// Loading SentencePiece behind this shim with deep binding keeps its protobuf to itself. Only plain C types
// cross the boundary; buffers belong to the caller.
#include <sentencepiece_processor.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {
struct Handle {
  sentencepiece::SentencePieceProcessor sp;
};
size_t copy_out(const std::string& s, char* out, size_t cap) {
  if (out && cap >= s.size()) std::memcpy(out, s.data(), s.size());
  return s.size();
}
}  // namespace

extern "C" {

// Returns a handle, or null with the error message copied into err (NUL-terminated, truncated to err_cap).
void* lctx_spm_load(const char* bytes, size_t len, char* err, size_t err_cap) {
  auto* h = new Handle();
  auto st = h->sp.LoadFromSerializedProto(std::string_view(bytes, len));
  if (!st.ok() || h->sp.GetPieceSize() <= 0) {
    std::string msg = st.ok() ? std::string("empty model") : st.ToString();
    if (err && err_cap) {
      size_t n = std::min(msg.size(), err_cap - 1);
      std::memcpy(err, msg.data(), n);
      err[n] = 0;
    }
    delete h;
    return nullptr;
  }
  return h;
}

void lctx_spm_free(void* h) { delete static_cast<Handle*>(h); }

// Encodes text into out (capacity cap). Returns the number of ids (if > cap, nothing useful was written:
// call again with a larger buffer), or -1 on failure.
int64_t lctx_spm_encode(void* h, const char* text, size_t len, int32_t* out, size_t cap) {
  std::vector<int> ids;
  if (!static_cast<Handle*>(h)->sp.Encode(std::string_view(text, len), &ids).ok()) return -1;
  if (out && cap >= ids.size())
    for (size_t i = 0; i < ids.size(); ++i) out[i] = ids[i];
  return static_cast<int64_t>(ids.size());
}

// Decodes ids into out (capacity cap). Returns the byte length (see encode), or -1 on failure.
int64_t lctx_spm_decode(void* h, const int32_t* ids, size_t n, char* out, size_t cap) {
  std::vector<int> v(ids, ids + n);
  std::string s;
  if (!static_cast<Handle*>(h)->sp.Decode(v, &s).ok()) return -1;
  return static_cast<int64_t>(copy_out(s, out, cap));
}

int64_t lctx_spm_piece(void* h, int32_t id, char* out, size_t cap) {
  return static_cast<int64_t>(copy_out(static_cast<Handle*>(h)->sp.IdToPiece(id), out, cap));
}

// which: 0 vocab size, 1 bos, 2 eos, 3 unk, 4 pad.
int32_t lctx_spm_info(void* h, int which) {
  auto& sp = static_cast<Handle*>(h)->sp;
  switch (which) {
    case 0: return sp.GetPieceSize();
    case 1: return sp.bos_id();
    case 2: return sp.eos_id();
    case 3: return sp.unk_id();
    case 4: return sp.pad_id();
  }
  return -1;
}

}  // extern "C"
