// lctx::Error: every user-facing failure. The CLI prints "lctx: error: <message>" and exits non-zero, so the
// message is one line that names the bad input and what was expected.
#pragma once
#include <stdexcept>

namespace lctx {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace lctx
