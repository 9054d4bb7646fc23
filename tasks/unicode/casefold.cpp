#include "tasks/unicode/casefold.hpp"

#include <algorithm>
#include <iterator>
#include <vector>

namespace lctx {
namespace {
#include "lower_table.inc"

bool in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {  // first range with end >= cp
    size_t mid = (lo + hi) / 2;
    if (r[mid][1] < cp) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && r[lo][0] <= cp;
}

// Decodes the code point at s[i]; len = its byte length; cp = 0xFFFFFFFF for an invalid byte (len 1).
uint32_t decode(std::string_view s, size_t i, size_t& len) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    len = 1;
    return 0xFFFFFFFFu;
  }
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) {
    unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d >> 6) != 0x2) {
      len = 1;
      return 0xFFFFFFFFu;
    }
    cp = (cp << 6) | (d & 0x3F);
  }
  return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}
}  // namespace

const char* unicode_version() { return kUnicodeVersion; }

bool is_cased(uint32_t cp) { return in_ranges(kCased, std::size(kCased), cp); }
bool is_case_ignorable(uint32_t cp) { return in_ranges(kCaseIgnorable, std::size(kCaseIgnorable), cp); }

int lower_code_point(uint32_t cp, uint32_t out[3]) {
  if (cp < 0x80) {
    out[0] = cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    return 1;
  }
  auto it = std::lower_bound(std::begin(kLower1), std::end(kLower1), cp,
                             [](const uint32_t (&e)[2], uint32_t c) { return e[0] < c; });
  if (it != std::end(kLower1) && (*it)[0] == cp) {
    out[0] = (*it)[1];
    return 1;
  }
  for (const auto& m : kLowerMulti)
    if (m.cp == cp) {
      for (uint32_t k = 0; k < m.n; ++k) out[k] = m.to[k];
      return static_cast<int>(m.n);
    }
  out[0] = cp;
  return 1;
}

std::string py_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool ascii = true;
  for (char c : s) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) {
    for (char c : s) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    return out;
  }
  std::vector<uint32_t> cp;  // decoded text (invalid bytes as 0xFFFFFFFF), for the final-sigma context
  std::vector<size_t> pos;
  for (size_t i = 0, len; i < s.size(); i += len) {
    pos.push_back(i);
    cp.push_back(decode(s, i, len));
  }
  for (size_t k = 0; k < cp.size(); ++k) {
    const uint32_t c = cp[k];
    if (c == 0xFFFFFFFFu) {
      out += s[pos[k]];
      continue;
    }
    if (c == 0x03A3) {  // CPython's handle_capital_sigma
      size_t j = k;
      uint32_t prev = 0;
      bool found = false;
      while (j > 0) {
        prev = cp[--j];
        if (!is_case_ignorable(prev)) {
          found = true;
          break;
        }
      }
      bool final_sigma = found && is_cased(prev);
      if (final_sigma && k + 1 < cp.size()) {
        size_t m = k + 1;
        for (; m < cp.size(); ++m)
          if (!is_case_ignorable(cp[m])) break;
        final_sigma = m == cp.size() || !is_cased(cp[m]);
      }
      append_utf8(out, final_sigma ? 0x03C2 : 0x03C3);
      continue;
    }
    uint32_t lo[3];
    int n = lower_code_point(c, lo);
    for (int q = 0; q < n; ++q) append_utf8(out, lo[q]);
  }
  return out;
}

}  // namespace lctx
