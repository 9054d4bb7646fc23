// Helpers of the harness tests: a substring matcher for REQUIRE_THROWS_WITH with Catch2 v2 and v3 (v3 renamed
// it ContainsSubstring), and an empty temporary folder per test process.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/files.hpp"
#include "tests/catch.hpp"

namespace lctx_harness_test {
inline auto has(const std::string& s) {
#ifdef LCTX_CATCH3
  return Catch::Matchers::ContainsSubstring(s);
#else
  return Catch::Matchers::Contains(s);
#endif
}

// TMP/lctx-harness-TAG-PID, emptied.
inline std::string temp_dir(const std::string& tag) {
  auto d = std::filesystem::temp_directory_path() / ("lctx-harness-" + tag + "-" + std::to_string(::getpid()));
  lctx::remove_tree(d);
  std::filesystem::create_directories(d);
  return d.string();
}
}  // namespace lctx_harness_test
