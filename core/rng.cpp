#include "core/rng.hpp"

#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace lctx {

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = x = splitmix64(x);
}

void Rng::below_zero() { throw Error("Rng::below(0)"); }

uint64_t Rng::below_rest(uint64_t n, uint64_t x) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  while (x >= limit) x = next();
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

}  // namespace lctx
