#include "core/hash.hpp"

#include <cstdio>

namespace lctx {

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

}  // namespace lctx
