// 64-bit hashing (FNV-1a over bytes, splitmix64 finaliser): stable across platforms, compilers and runs.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace lctx {

uint64_t fnv1a64(std::string_view bytes, uint64_t h = 0xcbf29ce484222325ULL);
uint64_t splitmix64(uint64_t x);
uint64_t hash_combine(uint64_t a, uint64_t b);
std::string hex64(uint64_t v);  // 16 lowercase hex digits

// Per-sample seed: a pure function of (suite, task, length, index, run seed, extra). Never share RNG state
// across samples; derive it with this instead.
uint64_t sample_seed(std::string_view suite, std::string_view task, int64_t length, int64_t index,
                     uint64_t seed, std::string_view extra = {});

}  // namespace lctx
