#include "tasks/tokenizer.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <exception>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

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
  t->init_one_call(bytes);
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


// ---- One-call counts -----------------------------------------------------------------------------------------
// SentencePiece 0.1.9x's unigram encoder (unigram_model.cc, EncodeOptimized) is a Viterbi pass over the whole
// normalised text that keeps, for every byte position, the best path score as a float32. Because no piece
// holds a "▁" past its first character (checked below), every path passes through every "▁": the text splits
// into words ("▁" + the bytes up to the next space), and the call is the same as running that Viterbi word
// after word, each word starting from the float score the previous one ended with. Long texts make that
// score large (about -8 per token: -8e6 at 1M tokens, where a float has a step of 1), so near-ties between
// segmentations of a word are decided by rounding, which is why a one-call count is not the sum of per-word
// counts. Below, each distinct word's lattice (its candidate pieces in SentencePiece's visiting order) is
// cached, and the Viterbi is replayed over it with SentencePiece's types: a piece's candidate score is
// computed in double (a user-defined piece's bonus is a double expression, so both branches are), compared
// with the stored float, and stored as a float; the unknown-character candidate is float arithmetic.
namespace {

// Minimal protobuf wire reader for the fields of sentencepiece_model.proto we need.
struct Wire {
  const unsigned char* p;
  const unsigned char* e;
  bool ok = true;
  uint64_t varint() {
    uint64_t v = 0;
    for (int sh = 0; p < e && sh < 64; sh += 7) {
      unsigned char b = *p++;
      v |= uint64_t(b & 0x7F) << sh;
      if (!(b & 0x80)) return v;
    }
    ok = false;
    return 0;
  }
  // Calls f(field, wiretype, value, data, len) for each field.
  template <class F> void each(F f) {
    while (ok && p < e) {
      uint64_t key = varint();
      int field = static_cast<int>(key >> 3), wt = static_cast<int>(key & 7);
      if (wt == 0) {
        uint64_t v = varint();
        f(field, wt, v, nullptr, 0);
      } else if (wt == 1) {
        if (e - p < 8) { ok = false; return; }
        p += 8;
      } else if (wt == 2) {
        uint64_t n = varint();
        if (uint64_t(e - p) < n) { ok = false; return; }
        f(field, wt, 0, p, static_cast<size_t>(n));
        p += n;
      } else if (wt == 5) {
        if (e - p < 4) { ok = false; return; }
        uint32_t v;
        std::memcpy(&v, p, 4);
        p += 4;
        f(field, wt, v, nullptr, 0);
      } else {
        ok = false;
      }
    }
  }
};

constexpr int kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;

}  // namespace

struct Tokenizer::Sim {
  struct Piece {
    int32_t id;
    int type;
    float score;
  };
  std::unordered_map<std::string, Piece> pieces;  // NORMAL, USER_DEFINED, UNUSED (SentencePiece's trie)
  size_t max_len = 0;
  float min_score = 0, max_score = 0, unk_score = 0;
  int32_t unk_id = 0;
  int32_t byte_id[256];
  // A word's lattice: candidates in visiting order (start ascending, then length ascending, then the unknown
  // candidate of that start).
  struct Edge {
    uint16_t from, to;
    bool unk, user;
    float score;    // piece score (unk: unk_score)
    double uscore;  // user-defined bonus
    int32_t id;
  };
  struct Word {
    std::vector<Edge> edges;
    uint16_t size;  // normalised bytes: 3 ("▁") + the word's bytes
  };
  Word lattice(std::string_view rest) const {
    std::string w = "\xE2\x96\x81";
    w += rest;
    Word out;
    out.size = static_cast<uint16_t>(w.size());
    for (size_t start = 0; start < w.size();) {
      unsigned char c = static_cast<unsigned char>(w[start]);
      size_t mblen = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
      mblen = std::min(mblen, w.size() - start);
      bool single = false;
      for (size_t len = 1; len <= max_len && start + len <= w.size(); ++len) {
        auto it = pieces.find(w.substr(start, len));
        if (it == pieces.end()) continue;
        if (it->second.type == kUnused) continue;
        Edge e{static_cast<uint16_t>(start), static_cast<uint16_t>(start + len), false,
               it->second.type == kUserDefined, it->second.score, double(float(len) * max_score) - 0.1, it->second.id};
        out.edges.push_back(e);
        if (len == mblen) single = true;
      }
      if (!single)
        out.edges.push_back(Edge{static_cast<uint16_t>(start), static_cast<uint16_t>(start + mblen), true, false,
                                 unk_score, 0.0, unk_id});
      start += mblen;
    }
    return out;
  }
};

void Tokenizer::init_one_call(const std::string& bytes) {
  Wire m{reinterpret_cast<const unsigned char*>(bytes.data()),
         reinterpret_cast<const unsigned char*>(bytes.data()) + bytes.size()};
  auto sim = std::make_shared<Sim>();
  int model_type = 1;
  bool byte_fallback = false, suffix = false, dummy = true, extra_ws = true, escape = true, inner_ws = false;
  std::string norm_name, charsmap;
  int32_t index = 0;
  for (auto& b : sim->byte_id) b = -1;
  bool any_normal = false;
  sim->min_score = 3.4028235e38f;
  sim->max_score = 1.17549435e-38f;  // FLT_MIN, as SentencePiece starts it
  m.each([&](int f, int wt, uint64_t, const unsigned char* d, size_t n) {
    if (f == 1 && wt == 2) {
      Wire pw{d, d + n};
      std::string piece;
      float score = 0;
      int type = kNormal;
      pw.each([&](int pf, int pwt, uint64_t v, const unsigned char* pd, size_t pn) {
        if (pf == 1 && pwt == 2) piece.assign(reinterpret_cast<const char*>(pd), pn);
        else if (pf == 2 && pwt == 5) { uint32_t u = static_cast<uint32_t>(v); std::memcpy(&score, &u, 4); }
        else if (pf == 3 && pwt == 0) type = static_cast<int>(v);
      });
      if (type == kNormal) {
        any_normal = true;
        sim->min_score = std::min(sim->min_score, score);
        sim->max_score = std::max(sim->max_score, score);
      }
      if (type == kNormal || type == kUserDefined || type == kUnused) {
        if (piece.find("\xE2\x96\x81", 1) != std::string::npos) inner_ws = true;
        sim->pieces.emplace(piece, Sim::Piece{index, type, score});
        sim->max_len = std::max(sim->max_len, piece.size());
      }
      if (type == kUnknown) sim->unk_id = index;
      if (type == kByte && piece.size() == 6 && piece.rfind("<0x", 0) == 0)
        sim->byte_id[std::strtoul(piece.substr(3, 2).c_str(), nullptr, 16) & 0xFF] = index;
      ++index;
    } else if (f == 2 && wt == 2) {
      Wire tw{d, d + n};
      tw.each([&](int tf, int twt, uint64_t v, const unsigned char*, size_t) {
        if (tf == 3 && twt == 0) model_type = static_cast<int>(v);
        else if (tf == 24 && twt == 0) suffix = v != 0;
        else if (tf == 35 && twt == 0) byte_fallback = v != 0;
      });
    } else if (f == 3 && wt == 2) {
      Wire nw{d, d + n};
      nw.each([&](int nf, int nwt, uint64_t v, const unsigned char* nd, size_t nn) {
        if (nf == 1 && nwt == 2) norm_name.assign(reinterpret_cast<const char*>(nd), nn);
        else if (nf == 2 && nwt == 2) charsmap.assign(reinterpret_cast<const char*>(nd), nn);
        else if (nf == 3 && nwt == 0) dummy = v != 0;
        else if (nf == 4 && nwt == 0) extra_ws = v != 0;
        else if (nf == 5 && nwt == 0) escape = v != 0;
      });
    }
  });
  bpe_ = model_type == 2;
  bool bytes_ok = true;
  for (int b : sim->byte_id) bytes_ok = bytes_ok && b >= 0;
  sim->unk_score = sim->min_score - 10.0f;  // kUnkPenalty
  const bool simulable = m.ok && model_type == 1 && any_normal && byte_fallback && bytes_ok && !suffix && dummy &&
                         !extra_ws && escape && charsmap.empty() && !inner_ws && sim->max_len < 60000;
  if (simulable && std::getenv("LCTX_ONE_CALL_REAL") == nullptr) sim_ = std::move(sim);
}

int64_t Tokenizer::count_one_call(std::string_view text, std::vector<int32_t>* ids, const std::vector<int64_t>* offsets,
                                  std::vector<int64_t>* tokens_at) const {
  if (tokens_at) tokens_at->assign(offsets ? offsets->size() : 0, 0);
  if (!sim_) {
    std::vector<int32_t> v;
    if (bpe_ && separable_) v = encode_long(text);  // BPE merges stay inside words: no drift
    else v = encode(text);
    if (offsets && tokens_at) {
      // Map offsets through the pieces' byte lengths (slow path, used only for models we cannot replay).
      int64_t pos = 0, tok = 0;
      size_t k = 0;
      bool first = true;
      for (int32_t id : v) {
        std::string p = piece(id);
        int64_t len = 0;
        if (p.size() == 6 && p.rfind("<0x", 0) == 0) len = 1;
        else
          for (size_t i = 0; i < p.size();) {
            if (p.compare(i, 3, "\xE2\x96\x81") == 0) { len += (first && i == 0) ? 0 : 1; i += 3; }
            else { ++len; ++i; }
          }
        first = false;
        while (k < offsets->size() && (*offsets)[k] < pos + len) (*tokens_at)[k++] = tok;
        pos += len;
        ++tok;
      }
      while (k < offsets->size()) (*tokens_at)[k++] = tok;
    }
    int64_t n = static_cast<int64_t>(v.size());
    if (ids) *ids = std::move(v);
    return n;
  }
  if (text.empty()) return 0;
  const Sim& sim = *sim_;
  // Per-thread cache of word lattices: open addressing over an arena of word bytes and one edge array.
  struct Cache {
    const void* owner = nullptr;
    std::string bytes;                                  // word texts, back to back
    std::vector<Sim::Edge> edges;                       // lattices, back to back
    struct Slot { uint64_t hash; uint32_t off, len, edge_off, edge_n, size; };
    std::vector<Slot> slots;                            // size: power of two; len == UINT32_MAX: empty
    size_t used = 0;
    std::vector<float> best;
    std::vector<int32_t> back, path;
    void reset(const void* o) {
      owner = o;
      bytes.clear();
      edges.clear();
      slots.assign(size_t(1) << 16, Slot{0, 0, UINT32_MAX, 0, 0, 0});
      used = 0;
    }
    void grow() {
      std::vector<Slot> old = std::move(slots);
      slots.assign(old.size() * 2, Slot{0, 0, UINT32_MAX, 0, 0, 0});
      const size_t mask = slots.size() - 1;
      for (auto& sl : old)
        if (sl.len != UINT32_MAX) {
          size_t i = sl.hash & mask;
          while (slots[i].len != UINT32_MAX) i = (i + 1) & mask;
          slots[i] = sl;
        }
    }
  };
  thread_local Cache cache_tl;
  Cache& cache = cache_tl;
  if (cache.owner != sim_.get() || cache.bytes.size() > (size_t(1) << 30) || cache.edges.size() > (size_t(1) << 26))
    cache.reset(sim_.get());
  std::vector<float>& best = cache.best;
  std::vector<int32_t>& back = cache.back;
  std::vector<int32_t>& path = cache.path;
  float S = 0.0f;
  int64_t count = 0;
  size_t k = 0;  // next offset
  if (ids) ids->clear();
  // Words: [ws, we) of text after the "▁" that stands for the dummy prefix (ws = 0) or the space at ws - 1.
  size_t ws = 0;
  while (true) {
    size_t we = text.find(' ', ws);
    if (we == std::string_view::npos) we = text.size();
    std::string_view rest = text.substr(ws, we - ws);
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ rest.size();
    {
      size_t i = 0;
      for (; i + 8 <= rest.size(); i += 8) {
        uint64_t v;
        std::memcpy(&v, rest.data() + i, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
      }
      uint64_t v = 0;
      std::memcpy(&v, rest.data() + i, rest.size() - i);
      h = (h ^ v) * 0xc4ceb9fe1a85ec53ULL;
      h ^= h >> 29;
    }
    const size_t mask = cache.slots.size() - 1;
    size_t si = h & mask;
    while (true) {
      const auto& sl = cache.slots[si];
      if (sl.len == UINT32_MAX) break;
      if (sl.hash == h && sl.len == rest.size() && std::memcmp(cache.bytes.data() + sl.off, rest.data(), rest.size()) == 0)
        break;
      si = (si + 1) & mask;
    }
    if (cache.slots[si].len == UINT32_MAX) {
      Sim::Word lw = sim.lattice(rest);
      Cache::Slot sl{h, static_cast<uint32_t>(cache.bytes.size()), static_cast<uint32_t>(rest.size()),
                     static_cast<uint32_t>(cache.edges.size()), static_cast<uint32_t>(lw.edges.size()), lw.size};
      cache.bytes.append(rest.data(), rest.size());
      cache.edges.insert(cache.edges.end(), lw.edges.begin(), lw.edges.end());
      cache.slots[si] = sl;
      if (++cache.used * 2 > cache.slots.size()) {
        cache.grow();
        const size_t m2 = cache.slots.size() - 1;
        si = h & m2;
        while (!(cache.slots[si].hash == h && cache.slots[si].len == rest.size() &&
                 cache.slots[si].off == sl.off))
          si = (si + 1) & m2;
      }
    }
    const Cache::Slot slot = cache.slots[si];
    const Sim::Edge* edges = cache.edges.data() + slot.edge_off;
    const size_t n_edges = slot.edge_n;
    struct WordView {
      const Sim::Edge* e;
      size_t n;
      size_t size;
    } w{edges, n_edges, slot.size};
    const size_t n = w.size;
    if (best.size() < n + 1) {
      best.resize(n + 1);
      back.resize(n + 1);
    }
    best[0] = S;
    for (size_t i = 1; i <= n; ++i) back[i] = -1;
    for (size_t e = 0; e < w.n; ++e) {
      const Sim::Edge& ed = w.e[e];
      const float till = best[ed.from];
      if (ed.unk) {
        const float cand = ed.score + till;
        if (back[ed.to] == -1 || cand > best[ed.to]) {
          best[ed.to] = cand;
          back[ed.to] = static_cast<int32_t>(e);
        }
      } else {
        const double cand = (ed.user ? ed.uscore : static_cast<double>(ed.score)) + till;
        if (back[ed.to] == -1 || cand > best[ed.to]) {
          best[ed.to] = static_cast<float>(cand);
          back[ed.to] = static_cast<int32_t>(e);
        }
      }
    }
    S = best[n];
    path.clear();
    for (size_t at = n; at > 0;) {
      const Sim::Edge& ed = w.e[static_cast<size_t>(back[at])];
      path.push_back(back[at]);
      at = ed.from;
    }
    // Normalised position p of this word <-> text offset: p < 3 is the "▁" (text ws - 1, or none for the
    // dummy prefix); p >= 3 is text ws + p - 3.
    for (size_t q = path.size(); q-- > 0;) {
      const Sim::Edge& ed = w.e[static_cast<size_t>(path[q])];
      const int64_t end_text = static_cast<int64_t>(ws) + static_cast<int64_t>(ed.to) - 3;  // text end of the piece
      if (ed.unk) {
        for (uint16_t b = ed.from; b < ed.to; ++b) {
          if (ids) {
            unsigned char byte = b < 3 ? static_cast<unsigned char>("\xE2\x96\x81"[b])
                                       : static_cast<unsigned char>(rest[b - 3]);
            ids->push_back(sim.byte_id[byte]);
          }
          if (offsets && b + 1 == ed.to)
            while (k < offsets->size() && (*offsets)[k] < end_text) (*tokens_at)[k++] = count;
          ++count;
        }
      } else {
        if (ids) ids->push_back(ed.id);
        if (offsets)
          while (k < offsets->size() && (*offsets)[k] < end_text) (*tokens_at)[k++] = count;
        ++count;
      }
    }
    if (we >= text.size()) break;
    ws = we + 1;
  }
  if (offsets)
    while (k < offsets->size()) (*tokens_at)[k++] = count;
  return count;
}

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
