// Case folding equals Python's str.lower() for every code point (tests/fixtures/unicode/lower.txt, written by
// gen_lower_fixture.py with python3), final sigma included; the scorers use it (RULER's vt with a Kelvin sign).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/catch.hpp"
#include "tasks/metrics.hpp"
#include "tasks/unicode/casefold.hpp"

namespace {
std::string from_hex(const std::string& h) {
  std::string s;
  for (size_t i = 0; i + 1 < h.size(); i += 2) s += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return s;
}
std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) s += static_cast<char>(cp);
  else if (cp < 0x800) { s += static_cast<char>(0xC0 | (cp >> 6)); s += static_cast<char>(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12)); s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18)); s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}
struct Fixture {
  std::string version;
  std::vector<std::vector<uint32_t>> lower;  // per code point; empty = unchanged
  std::vector<std::pair<std::string, std::string>> strings;
};
const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    x.lower.resize(0x110000);
    std::ifstream in(std::string(LCTX_TEST_DIR) + "/fixtures/unicode/lower.txt");
    REQUIRE(in.good());
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ss(line);
      std::string kind;
      ss >> kind;
      if (kind == "#") {
        std::string word;
        ss >> word >> x.version;
      } else if (kind == "C") {
        std::string h;
        ss >> h;
        uint32_t cp = static_cast<uint32_t>(std::stoul(h, nullptr, 16));
        while (ss >> h) x.lower[cp].push_back(static_cast<uint32_t>(std::stoul(h, nullptr, 16)));
      } else if (kind == "S") {
        std::string a, b;
        ss >> a >> b;
        x.strings.emplace_back(from_hex(a), from_hex(b));
      }
    }
    return x;
  }();
  return f;
}
}  // namespace

TEST_CASE("lowercase equals Python's str.lower() for every code point", "[casefold]") {
  const Fixture& f = fixture();
  REQUIRE(!f.version.empty());
  INFO("tables from Unicode " << lctx::unicode_version() << ", fixture from Python's Unicode " << f.version);
  int64_t mismatches = 0, cased = 0, changed = 0;
  for (uint32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    cased += lctx::is_cased(cp);
    std::vector<uint32_t> want = f.lower[cp].empty() ? std::vector<uint32_t>{cp} : f.lower[cp];
    changed += !f.lower[cp].empty();
    // Alone in a string, U+03A3 has no cased letter before it: Python gives U+03C3, as lower_code_point does.
    std::string got = lctx::py_lower(utf8(cp)), exp;
    for (uint32_t c : want) exp += utf8(c);
    if (got != exp) {
      if (++mismatches <= 10) FAIL_CHECK("U+" << std::hex << cp << ": lctx and Python differ");
    }
  }
  CHECK(mismatches == 0);
  CHECK(changed > 1400);  // 1433 in Unicode 14/15
  CHECK(cased > 4000);
}

TEST_CASE("final sigma and multi-code-point lowercase in context, as Python", "[casefold]") {
  const Fixture& f = fixture();
  REQUIRE(f.strings.size() > 200);
  for (auto& [in, want] : f.strings) {
    INFO("input bytes " << in);
    CHECK(lctx::py_lower(in) == want);
  }
  CHECK(lctx::py_lower("\xE2\x84\xAA") == "k");              // Kelvin sign
  CHECK(lctx::py_lower("\xC4\xB0") == "i\xCC\x87");          // U+0130 -> i + combining dot
  CHECK(lctx::py_lower("ab\xFF" "C") == "ab\xFF" "c");       // invalid bytes kept
}

TEST_CASE("scorers fold case as Python does (Kelvin sign in vt, KITCHEN in qa1)", "[casefold][metrics]") {
  // RULER: "X\u212aFVQ" vs reference "xkfvq" (string_match_all lowercases both sides).
  CHECK(lctx::ruler_string_match_all("X\xE2\x84\xAA" "FVQ, AB", {"xkfvq"}) == 1.0);
  // BABILong: "\u212aITCHEN" lowercases to "kitchen".
  CHECK(lctx::babilong_compare("kitchen", "\xE2\x84\xAA" "ITCHEN", "Where is John? ", "qa1"));
}
