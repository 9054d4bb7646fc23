#include "tasks/core.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace lctx {

static std::string trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

int64_t parse_length(std::string_view in) {
  std::string s = trim(in);
  if (s.empty()) throw Error("bad length '': expected a number like 4096, 4k, 128K, 1m or 32M");
  int64_t mult = 1;
  char last = s.back();
  if (last == 'k' || last == 'K') mult = 1024;
  else if (last == 'm' || last == 'M') mult = 1024LL * 1024;
  else if (last == 'g' || last == 'G') mult = 1024LL * 1024 * 1024;
  std::string num = mult == 1 ? s : s.substr(0, s.size() - 1);
  bool ok = !num.empty() && num.size() <= 12;
  for (char c : num) ok = ok && std::isdigit(static_cast<unsigned char>(c));
  if (!ok) throw Error("bad length '" + std::string(in) + "': expected a number like 4096, 4k, 128K, 1m or 32M");
  int64_t v = std::stoll(num) * mult;
  if (v > (int64_t(1) << 36)) throw Error("bad length '" + std::string(in) + "': larger than 64G tokens");
  return v;
}

std::vector<std::string> split_list(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t p = s.find(sep, start);
    if (p == std::string_view::npos) p = s.size();
    std::string item = trim(s.substr(start, p - start));
    if (!item.empty()) out.push_back(item);
    start = p + 1;
  }
  return out;
}

std::vector<int64_t> parse_lengths(std::string_view s) {
  std::vector<int64_t> out;
  for (auto& item : split_list(s)) out.push_back(parse_length(item));
  if (out.empty()) throw Error("bad length list '" + std::string(s) + "': no lengths given");
  return out;
}

std::string format_length(int64_t n) {
  if (n >= (1LL << 30) && n % (1LL << 30) == 0) return std::to_string(n >> 30) + "g";
  if (n >= (1LL << 20) && n % (1LL << 20) == 0) return std::to_string(n >> 20) + "m";
  if (n >= 1024 && n % 1024 == 0) return std::to_string(n >> 10) + "k";
  return std::to_string(n);
}

uint64_t fnv1a64(std::string_view bytes, uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t hash_combine(uint64_t a, uint64_t b) { return splitmix64(a ^ splitmix64(b + 0x632be59bd9b4e019ULL)); }

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t sample_seed(std::string_view suite, std::string_view task, int64_t length, int64_t index,
                     uint64_t seed, std::string_view extra) {
  uint64_t h = fnv1a64(suite);
  h = hash_combine(h, fnv1a64(task));
  h = hash_combine(h, static_cast<uint64_t>(length));
  h = hash_combine(h, static_cast<uint64_t>(index));
  h = hash_combine(h, seed);
  if (!extra.empty()) h = hash_combine(h, fnv1a64(extra));
  return h;
}

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = x = splitmix64(x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t Rng::next() {
  uint64_t result = rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

uint64_t Rng::below(uint64_t n) {
  if (n == 0) throw Error("Rng::below(0)");
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = next(); while (x >= limit);
  return x % n;
}

int64_t Rng::range(int64_t lo, int64_t hi) {
  if (hi < lo) throw Error("Rng::range: empty range");
  return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
}

double Rng::uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }

bool Rng::bernoulli(double p) { return uniform() < p; }

double Rng::normal() {
  double u1 = uniform(), u2 = uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

std::vector<size_t> Rng::sample_indices(size_t n, size_t k) {
  if (k > n) throw Error("Rng::sample_indices: k > n");
  std::vector<size_t> out;
  out.reserve(k);
  if (k * 4 < n) {  // rejection for sparse draws
    std::vector<size_t> seen;
    while (out.size() < k) {
      size_t x = below(n);
      bool dup = false;
      for (size_t y : out) dup = dup || y == x;
      if (!dup) out.push_back(x);
    }
    return out;
  }
  std::vector<size_t> all(n);
  for (size_t i = 0; i < n; ++i) all[i] = i;
  for (size_t i = 0; i < k; ++i) {
    size_t j = i + below(n - i);
    std::swap(all[i], all[j]);
    out.push_back(all[i]);
  }
  return out;
}

std::string Rng::uuid4() {
  uint64_t a = next(), b = next();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;   // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;   // variant 10
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(a >> 32), static_cast<unsigned long long>((a >> 16) & 0xffff),
                static_cast<unsigned long long>(a & 0xffff), static_cast<unsigned long long>(b >> 48),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

std::string data_dir() {
  if (const char* e = std::getenv("LCTX_DATA"); e && *e) return e;
  return std::string(LCTX_SOURCE_DIR) + "/data";
}

std::string cache_dir() {
  if (const char* e = std::getenv("LCTX_CACHE"); e && *e) return e;
  return data_dir() + "/cache";
}

std::string asset(const std::string& rel) {
  if (const char* e = std::getenv("LCTX_HOME"); e && *e) return std::string(e) + "/" + rel;
  return std::string(LCTX_SOURCE_DIR) + "/" + rel;
}

std::string default_tokenizer_path() { return asset("assets/tokenizer/lctx-8k.model"); }

std::vector<DirEntry> list_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw Error("cannot list " + dir + ": " + std::strerror(errno));
  std::vector<DirEntry> out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    DirEntry de;
    de.name = n;
    de.path = dir + (!dir.empty() && dir.back() == '/' ? "" : "/") + n;
    struct stat st;
    if (::stat(de.path.c_str(), &st) == 0) {
      de.is_file = S_ISREG(st.st_mode);
      de.is_dir = S_ISDIR(st.st_mode);
    }
    out.push_back(std::move(de));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return out;
}

void remove_tree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw Error("cannot remove " + path + ": " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    DIR* d = ::opendir(path.c_str());
    if (!d) throw Error("cannot remove " + path + ": " + std::strerror(errno));
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(path + "/" + n);
    }
    ::closedir(d);
    for (auto& n : names) remove_tree(n);
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) throw Error("cannot remove " + path + ": " + std::strerror(errno));
  } else if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    throw Error("cannot remove " + path + ": " + std::strerror(errno));
  }
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error("cannot read " + path + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void ensure_dir(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec || !fs::is_directory(path)) throw Error("cannot create directory " + path + ": " + ec.message());
  std::string probe = path + "/.lctx-write-probe";
  FILE* f = std::fopen(probe.c_str(), "wb");
  if (!f) throw Error("cannot write to directory " + path + ": " + std::strerror(errno));
  std::fclose(f);
  std::remove(probe.c_str());
}

void write_file_atomic(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error("cannot write " + path + ": " + std::strerror(errno));
  bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  ok = (std::fflush(f) == 0) && ok;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("cannot write " + path + ": " + std::strerror(errno));
  }
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

std::string version_string() { return LCTX_VERSION; }
std::string git_hash() { return LCTX_GIT_HASH; }

}  // namespace lctx
