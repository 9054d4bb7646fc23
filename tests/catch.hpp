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
}  // namespace lctx_test
