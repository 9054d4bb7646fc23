// Catch2 shim: the tests include this file only, and build against Catch2 v2 (single header) or v3.
#pragma once
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#define LCTX_CATCH3 1
#else
#include <catch2/catch.hpp>
#endif
#include <string>
namespace lctx_test {
// Folder with test fixtures (tests/fixtures) and the lctx binary built next to the tests.
inline std::string fixture(const std::string& name) { return std::string(LCTX_TEST_DIR) + "/fixtures/" + name; }
inline std::string lctx_bin() { return LCTX_BIN; }
// Substring matcher for REQUIRE_THROWS_WITH / CHECK_THAT: Catch2 v3 renamed it (v3's Contains is the
// vector-element matcher).
inline auto Contains(const std::string& s) {
#ifdef LCTX_CATCH3
  return Catch::Matchers::ContainsSubstring(s);
#else
  return Catch::Matchers::Contains(s);
#endif
}
}  // namespace lctx_test
