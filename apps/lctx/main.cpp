// lctx: the front executable. generate, score and report run here and never load LibTorch; the commands that
// run models are forwarded to lctx-torch, installed in the same folder (see apps/lctx/command.hpp).
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "apps/lctx/command.hpp"

namespace {

// $LCTX_TORCH_BIN, else lctx-torch in the folder of this executable.
std::string torch_executable() {
  if (const char* e = std::getenv("LCTX_TORCH_BIN"); e && *e) return e;
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  std::string self = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  const auto slash = self.rfind('/');
  return (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) + "/lctx-torch";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2) {
    const lctx::cli::CommandInfo* c = lctx::cli::find_command(argv[1]);
    if (c && c->torch) {
      const std::string exe = torch_executable();
      ::execv(exe.c_str(), argv);
      const int err = errno;
      std::fflush(stdout);
      if (err == ENOENT)
        std::fprintf(stderr, "lctx: error: `lctx %s` needs LibTorch, and this build has none (%s is missing)\n",
                     argv[1], exe.c_str());
      else
        std::fprintf(stderr, "lctx: error: cannot start %s: %s\n", exe.c_str(), std::strerror(err));
      return 1;
    }
  }
  return lctx::cli::main(argc, argv);
}
