// Catch2 shim: the tests include this file only, and build against Catch2 v2 (single header) or v3.
#pragma once
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#define LCTX_CATCH3 1
#else
#include <catch2/catch.hpp>
#endif
#include <sys/wait.h>

#include <cstdio>
#include <string>
namespace lctx_test {
// Folder with test fixtures (tests/fixtures) and the lctx binary built next to the tests.
inline std::string fixture(const std::string& name) { return std::string(LCTX_TEST_DIR) + "/fixtures/" + name; }
inline std::string lctx_bin() { return LCTX_BIN; }
// Runs `lctx ARGS` through the shell: exit status (-1 when it did not exit normally) and stdout + stderr.
struct CmdResult {
  int rc;
  std::string out;
};
inline CmdResult run_lctx(const std::string& args) {
  FILE* p = popen((lctx_bin() + " " + args + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  CmdResult r{-1, ""};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}
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
