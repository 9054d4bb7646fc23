#include "tasks/tokenizer.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <exception>
#include <cstring>
#include <cmath>
#include <deque>
#include <limits>
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
  std::deque<std::string> keys;                        // piece texts (the map's keys point into them)
  std::unordered_map<std::string_view, Piece> pieces;  // NORMAL, USER_DEFINED, UNUSED (SentencePiece's trie)
  size_t max_len = 0;
  // The same pieces as a byte trie (node 0: the root) in one open-addressing table of (node, byte) -> child,
  // so that a lattice walks each start's matches once instead of looking up every substring.
  std::vector<uint64_t> trie_key;  // (node << 8 | byte) + 1; 0: empty slot
  std::vector<uint32_t> trie_child;
  std::vector<int32_t> node_piece;  // index into node_info, -1: no piece ends here
  std::vector<Piece> node_info;
  uint32_t trie_find(uint32_t node, unsigned char b) const {
    const uint64_t key = ((uint64_t(node) << 8) | b) + 1;
    const size_t mask = trie_key.size() - 1;
    for (size_t i = (key * 0x9E3779B97F4A7C15ULL) >> 20 & mask;; i = (i + 1) & mask) {
      if (trie_key[i] == key) return trie_child[i];
      if (trie_key[i] == 0) return UINT32_MAX;
    }
  }
  void build_trie() {
    size_t nodes = 1;
    for (auto& kv : pieces) nodes += kv.first.size();
    size_t cap = 16;
    while (cap < 2 * nodes) cap <<= 1;
    trie_key.assign(cap, 0);
    trie_child.assign(cap, 0);
    node_piece.assign(1, -1);
    const size_t mask = cap - 1;
    for (auto& kv : pieces) {
      uint32_t node = 0;
      for (unsigned char b : kv.first) {
        uint32_t next = trie_find(node, b);
        if (next == UINT32_MAX) {
          next = static_cast<uint32_t>(node_piece.size());
          node_piece.push_back(-1);
          const uint64_t key = ((uint64_t(node) << 8) | b) + 1;
          size_t i = (key * 0x9E3779B97F4A7C15ULL) >> 20 & mask;
          while (trie_key[i] != 0) i = (i + 1) & mask;
          trie_key[i] = key;
          trie_child[i] = next;
        }
        node = next;
      }
      node_piece[node] = static_cast<int32_t>(node_info.size());
      node_info.push_back(kv.second);
    }
  }
  float min_score = 0, max_score = 0, unk_score = 0;
  int32_t unk_id = 0;
  int32_t byte_id[256];
  // A word's lattice: candidates in visiting order (start ascending, then length ascending, then the unknown
  // candidate of that start).
  // 16 bytes: a user-defined piece's bonus is not stored but computed from its length (user_score).
  struct Edge {
    uint16_t from, to;
    bool unk, user;
    float score;  // piece score (unk: unk_score)
    int32_t id;
  };
  static_assert(sizeof(Edge) == 16, "Edge: 16 bytes");
  // What SentencePiece scores a user-defined piece of the edge's length with.
  double user_score(const Edge& e) const { return double(float(size_t(e.to - e.from)) * max_score) - 0.1; }
  // Appends the lattice of "▁" + rest to `out` (scratch: a buffer for the normalised word).
  void lattice(std::string_view rest, std::vector<Edge>& out, std::string& scratch) const {
    scratch.assign("\xE2\x96\x81");
    scratch.append(rest.data(), rest.size());
    const std::string_view w = scratch;
    for (size_t start = 0; start < w.size();) {
      unsigned char c = static_cast<unsigned char>(w[start]);
      size_t mblen = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
      mblen = std::min(mblen, w.size() - start);
      bool single = false;
      uint32_t node = 0;
      for (size_t len = 1; len <= max_len && start + len <= w.size(); ++len) {
        node = trie_find(node, static_cast<unsigned char>(w[start + len - 1]));
        if (node == UINT32_MAX) break;  // no piece continues this prefix
        if (node_piece[node] < 0) continue;
        const Piece& pc = node_info[static_cast<size_t>(node_piece[node])];
        if (pc.type == kUnused) continue;
        Edge e{static_cast<uint16_t>(start), static_cast<uint16_t>(start + len), false, pc.type == kUserDefined,
               pc.score, pc.id};
        out.push_back(e);
        if (len == mblen) single = true;
      }
      if (!single)
        out.push_back(Edge{static_cast<uint16_t>(start), static_cast<uint16_t>(start + mblen), true, false,
                                 unk_score, unk_id});
      start += mblen;
    }
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
        if (!sim->pieces.count(piece)) {
          sim->keys.push_back(piece);
          sim->pieces.emplace(std::string_view(sim->keys.back()), Sim::Piece{index, type, score});
        }
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
  if (simulable && std::getenv("LCTX_ONE_CALL_REAL") == nullptr) {
    sim->build_trie();
    sim_ = std::move(sim);
  }
}

// ---- The replayed call: a per-thread cache of word records, and the Viterbi stepped word by word -------------
// Every distinct word ("▁" + its bytes) gets a record once per thread: its lattice, its best segmentation in
// exact arithmetic, and how far that segmentation is from a tie (`robust`, see best_path). Stepping a word
// from the running score S replays only that path's float arithmetic when S is small enough for rounding not
// to change the path (most words at 1M tokens), and the whole lattice otherwise.
struct Tokenizer::OneCall {
  struct Step {
    double add;  // what the Viterbi adds for this piece: its score, a user piece's bonus, or the unk score
    int32_t id;
    uint16_t from, to;
    bool unk;
  };
  struct Rec {
    uint32_t off, len;          // the word's bytes in `bytes`
    uint32_t edge_off, edge_n;  // its lattice in `edges`
    uint32_t step_off;          // its exact best path in `steps`
    uint16_t step_n, size;      // path length; normalised bytes (3 + len)
    float robust, mag;          // float path == exact path while ulp(|S| + mag) < robust
    int32_t tokens;             // tokens of the exact path (byte pieces counted one per byte)
  };
  // The float Viterbi over a word whose scores all stay in one binade [2^(e-1), 2^e) of magnitude is the same
  // for every running score S there: floats are multiples of u = 2^(e-24), a piece moves a score by
  // round(add / u) * u (unless add / u is a multiple of u plus a half: then S's parity decides), and each
  // comparison is between a sum S' + add (exact in double) and a stored multiple of u, i.e. between integers
  // times u plus add. So the outcome (score moved by du * u, tokens) is computed once per word and binade,
  // and kept in one table per binade indexed by word (small enough to stay in cache while S is in the binade).
  struct Binade {
    int32_t du;            // kUnknown, kNever (the binade's ties or inexact sums, long words: run the lattice)
    uint16_t tokens, len;  // len: the word's bytes
  };
  static constexpr int32_t kUnknown = INT32_MIN, kNever = INT32_MIN + 1;
  static constexpr int kBinadeLo = 14, kBinadeHi = 34;  // binades memoised: |S| in [2^13, 2^34)
  static_assert(kBinadeLo == 14, "8192.0f in step() and OneCallCounter::words is 2^(kBinadeLo - 1)");
  std::weak_ptr<const Sim> owner;
  const Sim* sim = nullptr;
  uint64_t gen = 0;  // bumped when the records are dropped (ids held elsewhere are then stale)
  int live = 0;      // OneCallCounters alive on this thread: records are never dropped meanwhile
  std::string bytes, scratch;
  std::vector<Sim::Edge> edges;
  std::vector<Step> steps;
  std::vector<Rec> recs;
  std::vector<Binade> binades[kBinadeHi - kBinadeLo];  // [binade][word]
  float max_mag = 0;                                    // the largest Rec::mag
  std::vector<uint64_t> slot_hash;
  std::vector<uint32_t> slot_rec;  // UINT32_MAX: empty
  std::vector<float> best;
  std::vector<int32_t> back, path;
  std::vector<double> xbest;
  std::vector<int32_t> xback, xcount;

  static OneCall& local(const std::shared_ptr<const Sim>& sim) {
    thread_local std::vector<std::unique_ptr<OneCall>> caches;
    OneCall* spare = nullptr;
    for (auto& c : caches) {
      if (!c->owner.expired() && c->sim == sim.get()) return *c;
      if (c->live == 0 && (!spare || c->owner.expired())) spare = c.get();
    }
    if (!spare || (caches.size() < 4 && !spare->owner.expired())) {
      caches.push_back(std::make_unique<OneCall>());
      spare = caches.back().get();
    }
    spare->owner = sim;
    spare->sim = sim.get();
    spare->clear();
    return *spare;
  }
  void clear() {
    ++gen;
    bytes.clear();
    edges.clear();
    steps.clear();
    recs.clear();
    for (auto& t : binades) t.clear();
    std::fill(filled.begin(), filled.end(), 0u);
    max_mag = 0;
    slot_hash.assign(size_t(1) << 16, 0);
    slot_rec.assign(size_t(1) << 16, UINT32_MAX);
  }
  // A safe point (no counter alive): drops the records when they have grown large.
  void trim() {
    if (live == 0 && (bytes.size() > (size_t(1) << 30) || edges.size() > (size_t(1) << 26))) clear();
  }
  static uint64_t hash(std::string_view w) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ w.size();
    size_t i = 0;
    for (; i + 8 <= w.size(); i += 8) {
      uint64_t v;
      std::memcpy(&v, w.data() + i, 8);
      h = (h ^ v) * 0xff51afd7ed558ccdULL;
      h ^= h >> 32;
    }
    uint64_t v = 0;
    std::memcpy(&v, w.data() + i, w.size() - i);
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    return h;
  }
  uint32_t intern(std::string_view w) {
    const uint64_t h = hash(w);
    size_t mask = slot_rec.size() - 1, si = h & mask;
    for (; slot_rec[si] != UINT32_MAX; si = (si + 1) & mask) {
      const Rec& r = recs[slot_rec[si]];
      if (slot_hash[si] == h && r.len == w.size() && std::memcmp(bytes.data() + r.off, w.data(), w.size()) == 0)
        return slot_rec[si];
    }
    Rec r{};
    r.off = static_cast<uint32_t>(bytes.size());
    r.len = static_cast<uint32_t>(w.size());
    r.edge_off = static_cast<uint32_t>(edges.size());
    bytes.append(w.data(), w.size());
    sim->lattice(w, edges, scratch);
    r.edge_n = static_cast<uint32_t>(edges.size() - r.edge_off);
    r.size = static_cast<uint16_t>(w.size() + 3);
    best_path(r);
    max_mag = std::max(max_mag, r.mag);
    const uint32_t id = static_cast<uint32_t>(recs.size());
    recs.push_back(r);
    slot_hash[si] = h;
    slot_rec[si] = id;
    if (recs.size() * 2 > slot_rec.size()) {
      std::vector<uint64_t> oh = std::move(slot_hash);
      std::vector<uint32_t> orc = std::move(slot_rec);
      slot_hash.assign(oh.size() * 2, 0);
      slot_rec.assign(oh.size() * 2, UINT32_MAX);
      mask = slot_rec.size() - 1;
      for (size_t i = 0; i < orc.size(); ++i)
        if (orc[i] != UINT32_MAX) {
          size_t j = oh[i] & mask;
          while (slot_rec[j] != UINT32_MAX) j = (j + 1) & mask;
          slot_hash[j] = oh[i];
          slot_rec[j] = orc[i];
        }
    }
    return id;
  }
  double add_of(const Sim::Edge& e) const { return e.unk ? double(e.score) : e.user ? sim->user_score(e) : double(e.score); }
  // The word's Viterbi in exact arithmetic (sums of a few floats are exact in double): its best path, and
  // `robust`, an ulp u of the running score below which the float32 Viterbi provably takes that path. With
  // the same path at every node before j, the float score at a node i is within k_i * u / 2 of the exact one
  // (k_i pieces on the path to i, each rounded once), so at node j the float comparison picks the exact winner
  // w over a candidate o when exact(w) - exact(o) > (k_w + k_o) * u / 2 + u (the two compared values are
  // rounded once more). robust = min over nodes and losing candidates of (exact(w) - exact(o)) /
  // ((k_w + k_o) / 2 + 1), where k are the piece counts at the candidates' start nodes; 0 on an exact tie.
  void best_path(Rec& r) {
    const Sim::Edge* e = edges.data() + r.edge_off;
    const size_t n = r.size;
    if (xbest.size() < n + 1) {
      xbest.resize(n + 1);
      xback.resize(n + 1);
      xcount.resize(n + 1);
      best.resize(n + 1);
      back.resize(n + 1);
    }
    xbest[0] = 0;
    xcount[0] = 0;
    for (size_t i = 1; i <= n; ++i) xback[i] = -1;
    double mag = 0;
    for (size_t k = 0; k < r.edge_n; ++k) {
      const double cand = xbest[e[k].from] + add_of(e[k]);
      mag = std::max(mag, std::fabs(cand));
      if (xback[e[k].to] == -1 || cand > xbest[e[k].to]) {
        xbest[e[k].to] = cand;
        xback[e[k].to] = static_cast<int32_t>(k);
        xcount[e[k].to] = xcount[e[k].from] + 1;
      }
    }
    double robust = std::numeric_limits<double>::infinity();
    for (size_t k = 0; k < r.edge_n; ++k) {
      if (xback[e[k].to] == static_cast<int32_t>(k)) continue;
      const double diff = xbest[e[k].to] - (xbest[e[k].from] + add_of(e[k]));
      const double denom = 0.5 * double(xcount[e[xback[e[k].to]].from] + xcount[e[k].from]) + 1.0;
      robust = diff <= 0 ? 0.0 : std::min(robust, diff / denom);
    }
    path.clear();
    for (size_t at = n; at > 0; at = e[xback[at]].from) path.push_back(xback[at]);
    r.step_off = static_cast<uint32_t>(steps.size());
    r.step_n = static_cast<uint16_t>(path.size());
    r.tokens = 0;
    for (size_t q = path.size(); q-- > 0;) {
      const Sim::Edge& ed = e[path[q]];
      steps.push_back(Step{add_of(ed), ed.id, ed.from, ed.to, ed.unk});
      r.tokens += ed.unk ? ed.to - ed.from : 1;
    }
    // Stored as floats, rounded towards safety (robust down, mag up).
    r.robust = robust == std::numeric_limits<double>::infinity() ? std::numeric_limits<float>::infinity()
                                                                 : std::nextafter(float(robust), 0.0f);
    r.mag = std::nextafter(float(mag), std::numeric_limits<float>::infinity());
  }
  // frexp's exponent of a positive normal float x (x = m * 2^e, m in [0.5, 1)), and 2^k as a double.
  static int exponent(float x) {
    uint32_t b;
    std::memcpy(&b, &x, 4);
    return static_cast<int>((b >> 23) & 0xFF) - 126;
  }
  static double pow2(int k) {
    const uint64_t b = uint64_t(k + 1023) << 52;
    double d;
    std::memcpy(&d, &b, 8);
    return d;
  }
  // The spacing of floats at magnitude x (an upper bound for every float of magnitude <= x).
  static float ulp_at(float x) {
    if (!(x >= 1.17549435e-38f)) {
      int e2 = 0;
      std::frexp(x, &e2);
      return std::ldexp(1.0f, e2 - 24);
    }
    return static_cast<float>(pow2(exponent(x) - 24));
  }
  // Where marks are resolved: offsets[k..] (sorted text offsets) get the index of the token covering them.
  struct Marks {
    const int64_t* off = nullptr;
    size_t n = 0, k = 0;
    int64_t* at = nullptr;
    void resolve(int64_t end_text, int64_t tok) {
      while (k < n && off[k] < end_text) at[k++] = tok;
    }
  };
  // One piece of word `r` (bytes from..to of "▁" + word, at text offset ws) into count, ids and marks; a byte
  // piece counts one token per byte.
  void emit(const Rec& r, int64_t ws, uint16_t from, uint16_t to, bool unk, int32_t pid, int64_t& count,
            std::vector<int32_t>* ids, Marks* mk) const {
    const char* word = bytes.data() + r.off;
    const int64_t end_text = ws + static_cast<int64_t>(to) - 3;  // text end of the piece
    if (unk) {
      for (uint16_t b = from; b < to; ++b) {
        if (ids) {
          unsigned char byte = b < 3 ? static_cast<unsigned char>("\xE2\x96\x81"[b]) : static_cast<unsigned char>(word[b - 3]);
          ids->push_back(sim->byte_id[byte]);
        }
        if (mk && b + 1 == to) mk->resolve(end_text, count);
        ++count;
      }
    } else {
      if (ids) ids->push_back(pid);
      if (mk) mk->resolve(end_text, count);
      ++count;
    }
  }
  // Word id's outcome in binade e, from a running score S in it with room for the word (|S| + mag + 64 u < 2^e).
  Binade outcome(uint32_t id, int e, float S) {
    const Rec& r = recs[id];
    const double u = pow2(e - 24), top = pow2(e);
    Binade b{kNever, 0, 0};
    if (r.len > 65535) return b;
    bool ok = true;
    const Sim::Edge* ed = edges.data() + r.edge_off;
    for (size_t q = 0; ok && q < r.edge_n; ++q) {
      const double a = add_of(ed[q]), m = a / u;
      ok = a < 0 && m - std::floor(m) != 0.5 && (a + 2 * top) - 2 * top == a;
    }
    if (ok) {
      float S1 = S;
      int64_t c1 = 0;
      lattice_dp(id, 0, S1, c1, nullptr, nullptr);
      const double du = (double(S1) - double(S)) / u;
      if (du == std::nearbyint(du) && du > -2e9) b = Binade{static_cast<int32_t>(du), static_cast<uint16_t>(c1), static_cast<uint16_t>(r.len)};
    }
    return b;
  }
  // Every word's outcome in binade e (the outcome is the same from every S in the binade with room for the
  // word, so from the binade's bottom), for the words interned since the last fill: a haystack of corpus words
  // then never meets a word for the first time in a binade.
  std::vector<uint32_t> filled = std::vector<uint32_t>(kBinadeHi - kBinadeLo, 0);
  void fill_binade(int e) {
    auto& tab = binades[e - kBinadeLo];
    if (tab.size() < recs.size()) tab.resize(recs.size(), Binade{kUnknown, 0, 0});
    const float S0 = -static_cast<float>(pow2(e - 1));
    const double u = pow2(e - 24), top = pow2(e);
    for (uint32_t id = filled[e - kBinadeLo]; id < recs.size(); ++id)
      if (tab[id].du == kUnknown && double(-S0) + double(recs[id].mag) + 64 * u < top) tab[id] = outcome(id, e, S0);
    filled[e - kBinadeLo] = static_cast<uint32_t>(recs.size());
  }
  // Steps word `id`, whose bytes start at text offset ws, from (S, count); ids and marks when given.
  void step(uint32_t id, int64_t ws, float& S, int64_t& count, std::vector<int32_t>* ids, Marks* mk) {
    static const bool full_dp = std::getenv("LCTX_ONE_CALL_FULL_DP") != nullptr;
    const Rec& r = recs[id];
    const float aS = std::fabs(S);
    if (!full_dp && !ids && (!mk || mk->k >= mk->n || mk->off[mk->k] >= ws + static_cast<int64_t>(r.len) + 1) &&
        aS >= 8192.0f /* 2^(kBinadeLo - 1) */) {
      const int e = exponent(aS);
      const double u = pow2(e - 24), top = pow2(e);
      if (e < kBinadeHi && double(aS) + double(r.mag) + 64 * u < top) {
        auto& tab = binades[e - kBinadeLo];
        if (tab.size() <= id) tab.resize(std::max<size_t>(recs.size(), 1024), Binade{kUnknown, 0, 0});
        Binade& b = tab[id];
        if (b.du == kUnknown) b = outcome(id, e, S);
        if (b.du != kNever) {
          S = static_cast<float>(double(S) + double(b.du) * u);
          count += b.tokens;
          return;
        }
      }
    }
    if (!full_dp && ulp_at(aS + r.mag) < r.robust) {
      const Step* st = steps.data() + r.step_off;
      if (!ids && !mk) {
        for (size_t q = 0; q < r.step_n; ++q) {
          if (st[q].unk) S = static_cast<float>(st[q].add) + S;
          else S = static_cast<float>(st[q].add + static_cast<double>(S));
        }
        count += r.tokens;
        return;
      }
      for (size_t q = 0; q < r.step_n; ++q) {
        if (st[q].unk) S = static_cast<float>(st[q].add) + S;
        else S = static_cast<float>(st[q].add + static_cast<double>(S));
        emit(r, ws, st[q].from, st[q].to, st[q].unk, st[q].id, count, ids, mk);
      }
      return;
    }
    lattice_dp(id, ws, S, count, ids, mk);
  }
  // The whole lattice, with SentencePiece's types (see the comment above the Sim).
  void lattice_dp(uint32_t id, int64_t ws, float& S, int64_t& count, std::vector<int32_t>* ids, Marks* mk) {
    const Rec& r = recs[id];
    const Sim::Edge* e = edges.data() + r.edge_off;
    const size_t n = r.size;
    if (best.size() < n + 1) {
      best.resize(n + 1);
      back.resize(n + 1);
    }
    best[0] = S;
    for (size_t i = 1; i <= n; ++i) back[i] = -1;
    for (size_t k = 0; k < r.edge_n; ++k) {
      const Sim::Edge& ed = e[k];
      const float till = best[ed.from];
      if (ed.unk) {
        const float cand = ed.score + till;
        if (back[ed.to] == -1 || cand > best[ed.to]) {
          best[ed.to] = cand;
          back[ed.to] = static_cast<int32_t>(k);
        }
      } else {
        const double cand = (ed.user ? sim->user_score(ed) : static_cast<double>(ed.score)) + till;
        if (back[ed.to] == -1 || cand > best[ed.to]) {
          best[ed.to] = static_cast<float>(cand);
          back[ed.to] = static_cast<int32_t>(k);
        }
      }
    }
    S = best[n];
    path.clear();
    for (size_t at = n; at > 0; at = e[back[at]].from) path.push_back(back[at]);
    for (size_t q = path.size(); q-- > 0;) {
      const Sim::Edge& ed = e[path[q]];
      emit(r, ws, ed.from, ed.to, ed.unk, ed.id, count, ids, mk);
    }
  }
};

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
  OneCall& oc = OneCall::local(sim_);
  oc.trim();
  OneCall::Marks mk;
  if (offsets && tokens_at) mk = OneCall::Marks{offsets->data(), offsets->size(), 0, tokens_at->data()};
  float S = 0.0f;
  int64_t count = 0;
  if (ids) ids->clear();
  // Words: [ws, we) of text after the "▁" that stands for the dummy prefix (ws = 0) or the space at ws - 1.
  for (size_t ws = 0;;) {
    size_t we = text.find(' ', ws);
    if (we == std::string_view::npos) we = text.size();
    oc.step(oc.intern(text.substr(ws, we - ws)), static_cast<int64_t>(ws), S, count, ids, mk.n ? &mk : nullptr);
    if (we >= text.size()) break;
    ws = we + 1;
  }
  if (mk.n) mk.resolve(std::numeric_limits<int64_t>::max(), count);
  return count;
}

// ---- OneCallCounter --------------------------------------------------------------------------------------------
OneCallCounter::OneCallCounter(const Tokenizer& tok) {
  if (!tok.sim_) return;
  oc_ = &Tokenizer::OneCall::local(tok.sim_);
  oc_->trim();
  ++oc_->live;
}
OneCallCounter::~OneCallCounter() {
  if (oc_) --oc_->live;
}
uint64_t OneCallCounter::generation() const { return oc_ ? oc_->gen : 0; }
uint32_t OneCallCounter::intern(std::string_view word) { return oc_->intern(word); }
int64_t OneCallCounter::alone(uint32_t id) {
  float S = 0.0f;
  int64_t count = 0;
  oc_->step(id, 0, S, count, nullptr, nullptr);
  return count;
}

void OneCallCounter::step(uint32_t id) {
  if (count_ > limit_) {
    stopped_ = true;
    return;
  }
  if (fast_step(id)) return;
  Tokenizer::OneCall::Marks mk{mark_off_.data(), mark_off_.size(), open_, mark_tok_.data()};
  const bool marks = open_ < mark_off_.size();
  oc_->step(id, pos_, S_, count_, nullptr, marks ? &mk : nullptr);
  if (marks) open_ = mk.k;
  pos_ += static_cast<int64_t>(oc_->recs[id].len) + 1;
  if (trace_) trace_->push_back(Checkpoint{pos_, S_, count_});
}

void OneCallCounter::prepare(double max_abs_score) {
  using OC = Tokenizer::OneCall;
  for (int e = OC::kBinadeLo; e < OC::kBinadeHi && OC::pow2(e - 1) <= max_abs_score; ++e)
    if (oc_->filled[e - OC::kBinadeLo] < oc_->recs.size()) oc_->fill_binade(e);
}

// While S stays well inside one binade (no word can carry it out: max_mag), a word whose outcome there is
// known moves S and the count by its table entry: OneCall::step's binade case, without reading the word's
// record. False: step it the ordinary way.
bool OneCallCounter::fast_step(uint32_t id) {
  using OC = Tokenizer::OneCall;
  static const bool full_dp = std::getenv("LCTX_ONE_CALL_FULL_DP") != nullptr;
  const float aS = std::fabs(S_);
  if (full_dp || !(aS >= 8192.0f /* 2^(kBinadeLo - 1) */) || count_ > limit_) return false;
  const int e = OC::exponent(aS);
  if (e >= OC::kBinadeHi) return false;
  const double u = OC::pow2(e - 24), top = OC::pow2(e);
  const auto& tab = oc_->binades[e - OC::kBinadeLo];
  if (!(double(aS) + double(oc_->max_mag) + 64 * u < top) || id >= tab.size()) return false;
  const OC::Binade& b = tab[id];
  if (b.du == OC::kUnknown || b.du == OC::kNever ||
      !(open_ >= mark_off_.size() || mark_off_[open_] >= pos_ + static_cast<int64_t>(b.len) + 1))
    return false;
  S_ = static_cast<float>(double(S_) + double(b.du) * u);
  count_ += b.tokens;
  pos_ += static_cast<int64_t>(b.len) + 1;
  if (trace_) trace_->push_back(Checkpoint{pos_, S_, count_});
  return true;
}

void OneCallCounter::resume(const Checkpoint& c) {
  S_ = c.S;
  count_ = c.count;
  pos_ = c.pos;
  any_ = true;
}

void OneCallCounter::text(std::string_view s) {
  if (s.empty()) return;
  any_ = true;
  for (size_t p = 0;;) {
    size_t sp = s.find(' ', p);
    if (sp == std::string_view::npos) {
      if (p < s.size()) pending_id_ = UINT32_MAX;
      pending_.append(s.data() + p, s.size() - p);
      return;
    }
    if (pending_.empty()) {
      step(oc_->intern(s.substr(p, sp - p)));
    } else {
      if (sp > p) {
        pending_.append(s.data() + p, sp - p);
        pending_id_ = UINT32_MAX;
      }
      step(pending_id_ != UINT32_MAX ? pending_id_ : oc_->intern(pending_));
      pending_.clear();
      pending_id_ = UINT32_MAX;
    }
    p = sp + 1;
  }
}

void OneCallCounter::space_word(uint32_t id, std::string_view w) {
  text(" ");
  pending_.assign(w.data(), w.size());
  pending_id_ = id;
}

void OneCallCounter::space_words(const uint32_t* ids, size_t n, std::string_view last) {
  if (n == 0) return;
  text(" ");
  words(ids, n - 1);
  pending_.assign(last.data(), last.size());
  pending_id_ = ids[n - 1];
}

void OneCallCounter::words(const uint32_t* ids, size_t n) {
  if (n == 0) return;
  any_ = true;
  using OC = Tokenizer::OneCall;
  static const bool full_dp = std::getenv("LCTX_ONE_CALL_FULL_DP") != nullptr;
  const auto& recs = oc_->recs;
  for (size_t i = 0; i < n;) {
    const float aS = std::fabs(S_);
    if (!full_dp && aS >= 8192.0f /* 2^(kBinadeLo - 1) */) {
      const int e = OC::exponent(aS);
      if (e < OC::kBinadeHi) {
        // OneCall::step's binade case (see fast_step) while S stays below `room`: S only grows in magnitude,
        // so it stays in this binade, with room for every word.
        if (oc_->filled[e - OC::kBinadeLo] < oc_->recs.size()) oc_->fill_binade(e);
        const auto& tab = oc_->binades[e - OC::kBinadeLo];
        const double u = OC::pow2(e - 24), room = OC::pow2(e) - double(oc_->max_mag) - 64 * u;
        const bool marks = open_ < mark_off_.size();
        // Every score met here is a multiple of u below 2^e in magnitude, so each float step
        // S = float(double(S) + du * u) is exact: S after k words is S0 + (du_1 + ... + du_k) * u. The sum is
        // kept as an integer (no float round trip in the loop's dependency chain) and S formed from it.
        const double S0 = double(S_);
        const uint32_t tab_n = static_cast<uint32_t>(tab.size());
        const OC::Binade* tp = tab.data();
        const int64_t mark_at = marks ? mark_off_[open_] : INT64_MAX;
        int64_t acc = 0, cnt = count_, pos = pos_;
        for (; i < n; ++i) {
          if (!(std::fabs(S0 + double(acc) * u) < room) || cnt > limit_) break;
          const uint32_t id = ids[i];
          if (id >= tab_n) break;
          const OC::Binade b = tp[id];
          if (b.du == OC::kUnknown || b.du == OC::kNever) break;
          if (mark_at < pos + static_cast<int64_t>(b.len) + 1) break;
          if (i + 24 < n && ids[i + 24] < tab_n) __builtin_prefetch(tp + ids[i + 24]);
          acc += b.du;
          cnt += b.tokens;
          pos += static_cast<int64_t>(b.len) + 1;
          if (trace_) trace_->push_back(Checkpoint{pos, static_cast<float>(S0 + double(acc) * u), cnt});
        }
        S_ = static_cast<float>(S0 + double(acc) * u);
        count_ = cnt;
        pos_ = pos;
        if (i == n) break;
      }
    }
    if (i + 8 < n) __builtin_prefetch(&recs[ids[i + 8]]);
    step(ids[i++]);
  }
}

size_t OneCallCounter::mark(int64_t offset) {
  mark_off_.push_back(offset);
  mark_tok_.push_back(-1);
  return mark_off_.size() - 1;
}

void OneCallCounter::repeat(std::string_view unit, int64_t k) { repeat(unit, k, nullptr); }

void OneCallCounter::repeat(std::string_view unit, int64_t k, RepeatIds* cache) {
  if (k <= 0) return;
  const size_t fs = unit.find(' '), ls = unit.rfind(' ');
  if (fs == std::string_view::npos || !cache) {
    text(unit);
  } else {
    // text(unit) with the ids of the words between its first and last space from the cache (interned once).
    if (cache->gen != oc_->gen || cache->unit != unit) {
      cache->gen = oc_->gen;
      cache->unit.assign(unit.data(), unit.size());
      cache->mid.clear();
      for (size_t p = fs + 1; p <= ls;) {
        size_t sp = unit.find(' ', p);
        cache->mid.push_back(oc_->intern(unit.substr(p, sp - p)));
        p = sp + 1;
      }
    }
    any_ = true;
    const std::string_view head = unit.substr(0, fs);
    uint32_t first;
    if (pending_.empty()) {
      first = oc_->intern(head);
    } else if (head.empty() && pending_id_ != UINT32_MAX) {
      first = pending_id_;
    } else {
      pending_.append(head.data(), head.size());
      first = oc_->intern(pending_);
    }
    pending_.clear();
    pending_id_ = UINT32_MAX;
    step(first);
    for (uint32_t id : cache->mid) step(id);
    pending_.assign(unit.data() + ls + 1, unit.size() - ls - 1);
  }
  if (--k == 0) return;
  if (fs == std::string_view::npos) {
    while (k-- > 0) text(unit);
    return;
  }
  // From here on every repetition is the same word sequence: (pending + unit[0, fs)), the words between fs
  // and ls; the pending word stays unit[ls + 1, end).
  std::vector<uint32_t> ids;
  std::string first = pending_;
  first.append(unit.data(), fs);
  ids.push_back(oc_->intern(first));
  if (cache) {
    ids.insert(ids.end(), cache->mid.begin(), cache->mid.end());
  } else {
    for (size_t p = fs + 1; p <= ls;) {
      size_t sp = unit.find(' ', p);
      ids.push_back(oc_->intern(unit.substr(p, sp - p)));
      p = sp + 1;
    }
  }
  const std::string saved = pending_;
  pending_.clear();
  pending_id_ = UINT32_MAX;
  auto one = [&] {
    for (uint32_t id : ids) step(id);
  };
  while (k > 0) {
    // Composed repetitions: with |S| in [2^(e-1), 2^e) and every value met below 2^e, floats are multiples of
    // u = 2^(e-24), so adding a (not a multiple of u plus a half) moves S by exactly round(a / u) * u whatever S
    // is; each word takes its exact path while u < robust. Then a repetition moves S by a fixed delta.
    const float aS = std::fabs(S_);
    bool ok = S_ < 0 && open_ >= mark_off_.size();
    double delta = 0, maxmag = 0;
    int64_t toks = 0;
    int e2 = 0;
    std::frexp(aS, &e2);
    const double u = std::ldexp(1.0, e2 - 24), top = std::ldexp(1.0, e2);
    for (size_t i = 0; ok && i < ids.size(); ++i) {
      const auto& r = oc_->recs[ids[i]];
      if (!(double(r.robust) > u)) ok = false;
      maxmag = std::max(maxmag, double(r.mag));
      toks += r.tokens;
      const auto* st = oc_->steps.data() + r.step_off;
      for (size_t q = 0; ok && q < r.step_n; ++q) {
        const double a = st[q].add, m = a / u, f = m - std::floor(m);
        if (!(a < 0) || std::fabs(f - 0.5) < 1e-6) ok = false;
        delta += std::nearbyint(m) * u;
      }
    }
    using OC = Tokenizer::OneCall;
    if (!ok && S_ < 0 && open_ >= mark_off_.size() && !trace_ && aS >= 8192.0f && e2 < OC::kBinadeHi) {
      // Past the exact-path range: the words' outcomes in this binade (OneCall::step's binade case), each a
      // fixed move of S while S stays in the binade with room for every word.
      if (oc_->filled[e2 - OC::kBinadeLo] < oc_->recs.size()) oc_->fill_binade(e2);
      const auto& tab = oc_->binades[e2 - OC::kBinadeLo];
      ok = true;
      delta = 0;
      toks = 0;
      maxmag = double(oc_->max_mag);
      for (size_t i = 0; ok && i < ids.size(); ++i) {
        const OC::Binade& b = tab[ids[i]];
        ok = b.du != OC::kUnknown && b.du != OC::kNever;
        delta += double(b.du) * u;
        toks += b.tokens;
      }
    }
    int64_t j = 0;
    if (ok) {
      const double room = top - double(aS) - maxmag - 256 * u;  // 256 u: the rounding inside a word, with room
      if (room > 0) j = delta == 0 ? k : std::min<int64_t>(k, static_cast<int64_t>(std::floor(room / -delta)) - 1);
    }
    if (j >= 1) {
      S_ = static_cast<float>(double(S_) + double(j) * delta);
      count_ += j * toks;
      pos_ += j * static_cast<int64_t>(unit.size());
      k -= j;
    } else {
      one();
      --k;
    }
  }
  pending_ = saved;
}

int64_t OneCallCounter::finish() {
  if (finished_) return count_;
  finished_ = true;
  if (any_) step(pending_id_ != UINT32_MAX && !pending_.empty() ? pending_id_ : oc_->intern(pending_));
  pending_.clear();
  pending_id_ = UINT32_MAX;
  for (; open_ < mark_off_.size(); ++open_) mark_tok_[open_] = count_;
  return count_;
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
