// Portable PRNG (xoshiro256**): identical streams on every platform and compiler. The distributions are our
// own (std:: distributions are implementation-defined and would break golden hashes).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lctx {

class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n), n > 0, unbiased: x % n of the first draw x below UINT64_MAX - UINT64_MAX % n. Inline for
  // the draws at or below UINT64_MAX - n (all but about n / 2^64 of them), which are below that limit.
  uint64_t below(uint64_t n) {
    if (n == 0) below_zero();
    const uint64_t x = next();
    if (x <= UINT64_MAX - n) return x % n;
    return below_rest(n, x);
  }
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
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  [[noreturn]] static void below_zero();
  uint64_t below_rest(uint64_t n, uint64_t x);
  uint64_t s_[4];
};

}  // namespace lctx
