#include "tasks/tokenizer.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/files.hpp"

namespace lctx {

// SentencePiece lives behind a small C shim (tasks/spm_shim/spm_shim.cpp, liblctx_spm.so) loaded with deep
// binding, so that its bundled protobuf never meets LibTorch's (see the shim for the story).
namespace {
struct SpmApi {
  void* (*load)(const char*, size_t, char*, size_t);
  void (*free)(void*);
  int64_t (*encode)(void*, const char*, size_t, int32_t*, size_t);
  int64_t (*decode)(void*, const int32_t*, size_t, char*, size_t);
  int64_t (*piece)(void*, int32_t, char*, size_t);
  int32_t (*info)(void*, int);
};

std::string shim_path() {
  if (const char* e = std::getenv("LCTX_SPM_SHIM"); e && *e) return e;
  // Next to the running binary (installed layouts), else where the build put it.
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    for (const char* rel : {"/liblctx_spm.so", "/../lib/liblctx_spm.so"})
      if (file_exists(dir + rel)) return dir + rel;
  }
  return LCTX_SPM_SHIM_PATH;
}

const SpmApi& spm() {
  static const SpmApi api = [] {
    std::string path = shim_path();
    int flags = RTLD_NOW | RTLD_LOCAL;
#ifdef RTLD_DEEPBIND
    flags |= RTLD_DEEPBIND;
#endif
    void* lib = ::dlopen(path.c_str(), flags);
    if (!lib) throw Error(std::string("cannot load the SentencePiece shim: ") + ::dlerror());
    SpmApi a{};
    auto sym = [&](const char* name) {
      void* p = ::dlsym(lib, name);
      if (!p) throw Error(std::string("SentencePiece shim ") + path + ": missing " + name);
      return p;
    };
    a.load = reinterpret_cast<decltype(a.load)>(sym("lctx_spm_load"));
    a.free = reinterpret_cast<decltype(a.free)>(sym("lctx_spm_free"));
    a.encode = reinterpret_cast<decltype(a.encode)>(sym("lctx_spm_encode"));
    a.decode = reinterpret_cast<decltype(a.decode)>(sym("lctx_spm_decode"));
    a.piece = reinterpret_cast<decltype(a.piece)>(sym("lctx_spm_piece"));
    a.info = reinterpret_cast<decltype(a.info)>(sym("lctx_spm_info"));
    return a;
  }();
  return api;
}
}  // namespace

Tokenizer::~Tokenizer() {
  if (sp_) spm().free(sp_);
}

std::shared_ptr<const Tokenizer> Tokenizer::load(const std::string& path) {
  if (!file_exists(path)) throw Error("tokenizer " + path + ": no such file");
  std::string bytes = read_file(path);
  auto t = std::shared_ptr<Tokenizer>(new Tokenizer());
  char err[512] = {0};
  t->sp_ = spm().load(bytes.data(), bytes.size(), err, sizeof err);
  if (!t->sp_) throw Error("tokenizer " + path + ": not a valid SentencePiece model (" + err + ")");
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
  // Most words and sentences fit the first guess; a long text is measured once, then encoded.
  std::vector<int32_t> ids(text.size() / 2 + 16);
  int64_t n = spm().encode(sp_, text.data(), text.size(), ids.data(), ids.size());
  if (n > static_cast<int64_t>(ids.size())) {
    ids.resize(static_cast<size_t>(n));
    n = spm().encode(sp_, text.data(), text.size(), ids.data(), ids.size());
  }
  if (n < 0) throw Error("tokenizer: encode failed");
  ids.resize(static_cast<size_t>(n));
  return ids;
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
  std::vector<int32_t> v;
  v.reserve(ids.size());
  const int32_t n = vocab_size();
  for (int32_t id : ids)
    if (id >= 0 && id < n) v.push_back(id);
  std::string out(v.size() * 4 + 16, '\0');
  int64_t len = spm().decode(sp_, v.data(), v.size(), out.data(), out.size());
  if (len > static_cast<int64_t>(out.size())) {
    out.resize(static_cast<size_t>(len));
    len = spm().decode(sp_, v.data(), v.size(), out.data(), out.size());
  }
  if (len < 0) throw Error("tokenizer: decode failed");
  out.resize(static_cast<size_t>(len));
  return out;
}

std::string Tokenizer::piece(int32_t id) const {
  std::string out(64, '\0');
  int64_t len = spm().piece(sp_, id, out.data(), out.size());
  if (len > static_cast<int64_t>(out.size())) {
    out.resize(static_cast<size_t>(len));
    len = spm().piece(sp_, id, out.data(), out.size());
  }
  out.resize(static_cast<size_t>(std::max<int64_t>(len, 0)));
  return out;
}
int32_t Tokenizer::vocab_size() const { return spm().info(sp_, 0); }
int32_t Tokenizer::bos_id() const { return spm().info(sp_, 1); }
int32_t Tokenizer::eos_id() const { return spm().info(sp_, 2); }
int32_t Tokenizer::unk_id() const { return spm().info(sp_, 3); }
int32_t Tokenizer::pad_id() const { return spm().info(sp_, 4); }

}  // namespace lctx
