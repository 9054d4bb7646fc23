// Substring matcher for REQUIRE_THROWS_WITH with Catch2 v2 and v3 (v3 renamed it ContainsSubstring).
#pragma once
#include <string>

#include "tests/catch.hpp"

namespace lctx_harness_test {
inline auto has(const std::string& s) {
#ifdef LCTX_CATCH3
  return Catch::Matchers::ContainsSubstring(s);
#else
  return Catch::Matchers::Contains(s);
#endif
}
}  // namespace lctx_harness_test
