// Core utilities shared by every lctx layer: errors, length strings, hashing, a portable RNG, paths, files.
// No LibTorch here (tasks/ and reports/ must build without it).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace lctx {

// Every user-facing failure is an lctx::Error with a one-line message; the CLI prints "lctx: error: <msg>"
// and exits non-zero.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "4k", "128K", "1m", "32M", "4096" -> tokens (k = 1024, m = 1048576, g = 2^30). Throws Error on bad input.
int64_t parse_length(std::string_view s);
// Comma-separated list of lengths ("4k,8k,32m").
std::vector<int64_t> parse_lengths(std::string_view s);
// Inverse of parse_length for display and file names: 4096 -> "4k", 33554432 -> "32m", 1000 -> "1000".
std::string format_length(int64_t n);
// Comma-separated list, trimmed, empty items dropped.
std::vector<std::string> split_list(std::string_view s, char sep = ',');

// 64-bit hashing (FNV-1a over bytes, splitmix64 finaliser): stable across platforms and runs.
uint64_t fnv1a64(std::string_view bytes, uint64_t h = 0xcbf29ce484222325ULL);
uint64_t splitmix64(uint64_t x);
uint64_t hash_combine(uint64_t a, uint64_t b);
std::string hex64(uint64_t v);  // 16 lowercase hex digits

// Per-sample seed: a pure function of (suite, task, length, index, run seed, extra). Never share RNG state
// across samples; derive it with this instead.
uint64_t sample_seed(std::string_view suite, std::string_view task, int64_t length, int64_t index,
                     uint64_t seed, std::string_view extra = {});

// Portable PRNG (xoshiro256**): identical streams on every platform and compiler; the distributions below
// are our own (std:: distributions are implementation-defined and would break golden hashes).
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  uint64_t below(uint64_t n);                 // uniform in [0, n), n > 0, unbiased
  int64_t range(int64_t lo, int64_t hi);      // uniform in [lo, hi] inclusive
  double uniform();                           // [0, 1)
  bool bernoulli(double p);
  double normal();
  template <class T> void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }
  template <class T> const T& choice(const std::vector<T>& v) { return v.at(below(v.size())); }
  // k distinct indices from [0, n), in draw order.
  std::vector<size_t> sample_indices(size_t n, size_t k);
  std::string uuid4();                        // random RFC 4122 version-4 UUID, lowercase
 private:
  uint64_t s_[4];
};

// Paths. data_dir(): $LCTX_DATA, else <source>/data. cache_dir(): $LCTX_CACHE, else <data_dir>/cache.
// asset(rel): a file shipped in the repository (templates, default tokenizer): $LCTX_HOME/rel, else <source>/rel.
std::string data_dir();
std::string cache_dir();
std::string asset(const std::string& rel);
std::string default_tokenizer_path();  // asset("assets/tokenizer/lctx-8k.model")

// Files. read_file throws Error("cannot read FILE: reason"). write_file_atomic writes FILE.tmp then renames,
// so a reader never sees a half-written file. ensure_dir creates a directory (and parents) or throws if it
// cannot be created or written.
std::string read_file(const std::string& path);
void write_file_atomic(const std::string& path, std::string_view data);
void ensure_dir(const std::string& path);
bool file_exists(const std::string& path);

// Directory listing and recursive removal with POSIX calls. std::filesystem's directory iterators are not used
// anywhere: LibTorch >= 2.5 wheels export their own statically linked copies of those libstdc++ symbols,
// which then replace the system ones in any binary that links LibTorch and crash (pytorch/pytorch#133437).
struct DirEntry {
  std::string name, path;  // file name; dir + "/" + name
  bool is_file = false, is_dir = false;  // after following symlinks
};
std::vector<DirEntry> list_dir(const std::string& dir);  // sorted by name, no "." / ".."; throws Error
void remove_tree(const std::string& path);               // like rm -rf: no error when missing; throws Error

// Build identity for metadata.
std::string version_string();  // "0.1.0"
std::string git_hash();        // short hash at configure time, or "unknown"

}  // namespace lctx
