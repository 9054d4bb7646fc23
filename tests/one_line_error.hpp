// Checks that a command failed with one line "lctx: error: ..." naming the problem (the CLI and harness tests).
#pragma once
#include <algorithm>
#include <string>

#include "tests/catch.hpp"

namespace lctx_test {
// A failed command's output `err` (exit status `rc`) is one line "lctx: error: ..." that contains `needle`.
inline void check_one_line_error(int rc, const std::string& err, const std::string& needle) {
  INFO(err);
  CHECK(rc != 0);
  CHECK(err.rfind("lctx: error: ", 0) == 0);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK(err.find(needle) != std::string::npos);
}
// `lctx ARGS` fails with one line "lctx: error: ..." that contains `needle`.
inline void check_error(const std::string& args, const std::string& needle) {
  const CmdResult r = run_lctx(args);
  INFO(args);
  check_one_line_error(r.rc, r.out, needle);
}
}  // namespace lctx_test
