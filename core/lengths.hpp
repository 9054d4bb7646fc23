// Context lengths and needle depths as users type them.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lctx {

// "4k", "128K", "1m", "32M", "4096" -> tokens (k = 1024, m = 1048576, g = 2^30). Throws Error on bad input.
int64_t parse_length(std::string_view s);
// Comma-separated list of lengths ("4k,8k,32m"); at least one.
std::vector<int64_t> parse_lengths(std::string_view s);
// Inverse of parse_length for display and file names: 4096 -> "4k", 33554432 -> "32m", 1000 -> "1000".
std::string format_length(int64_t n);

// Comma-separated needle depths in percent ("0,25,50,75,100"), each in [0, 100]; duplicates dropped, order kept.
// Throws Error("bad --depths: bad depth 'X' ...") on bad input.
std::vector<double> parse_depths(std::string_view s);
// 50 -> "50", 12.5 -> "12.5" (file names and messages).
std::string format_depth(double d);

}  // namespace lctx
