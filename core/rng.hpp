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

}  // namespace lctx
