// lctx-torch: the commands that run models (run, serve, train, train-eval). Users reach it through `lctx`,
// which replaces itself with this executable for those commands (apps/lctx/main.cpp).
#include <c10/util/Exception.h>

#include <string>

#include "apps/lctx/command.hpp"

namespace {

std::string describe(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) {
    std::string msg = c->what_without_backtrace();
    if (msg.find("out of memory") != std::string::npos) msg = "out of memory on the device: " + msg;
    return msg;
  }
  return e.what();
}

}  // namespace

int main(int argc, char** argv) { return lctx::cli::main(argc, argv, describe); }
