#include "core/lengths.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace lctx {

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

std::vector<double> parse_depths(std::string_view s) {
  std::vector<double> out;
  for (auto& item : split_list(s)) {
    char* end = nullptr;
    double d = std::strtod(item.c_str(), &end);
    if (end == item.c_str() || *end || !std::isfinite(d) || d < 0 || d > 100)
      throw Error("bad --depths: bad depth '" + item + "' (want percents in [0, 100], e.g. 0,25,50,75,100)");
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  }
  return out;
}

std::string format_depth(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", d);
  return buf;
}

}  // namespace lctx
