// The front executable: generate/score/report never load LibTorch, every command is listed, and the commands
// that need LibTorch are forwarded to lctx-torch.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/catch.hpp"

using lctx_test::lctx_bin;
using lctx_test::run_lctx;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

std::string torch_bin() { return lctx_bin().substr(0, lctx_bin().rfind('/')) + "/lctx-torch"; }

}  // namespace

TEST_CASE("the process of lctx generate maps no LibTorch", "[cli][front]") {
  // A 64K-token sample printed to a pipe that is not read is larger than the pipe buffer: the child is
  // still running, in the middle of `generate`, when its /proc/PID/maps is read.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const std::string bin = lctx_bin();
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], 1);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 2);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execl(bin.c_str(), bin.c_str(), "generate", "--suite", "ruler", "--tasks", "niah_single_1", "--lengths", "64k",
            "--index", "0", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  char first = 0;
  REQUIRE(::read(fds[0], &first, 1) == 1);  // the sample is being written: generate is running
  CHECK(first == '{');
  const std::string maps = slurp("/proc/" + std::to_string(pid) + "/maps");
  std::string rest;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) rest.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  CHECK(rest.size() > 100000);
  REQUIRE_FALSE(maps.empty());
  CHECK(maps.find("liblctx_spm") != std::string::npos);  // the tokenizer is loaded: this is generate at work
  CHECK(maps.find("libtorch") == std::string::npos);
  CHECK(maps.find("libc10") == std::string::npos);
}

TEST_CASE("lctx --help lists every command, --version is one line", "[cli][front]") {
  auto h = run_lctx("--help");
  CHECK(h.rc == 0);
  for (const char* c : {"generate", "score", "report", "run", "serve", "train", "train-eval"}) {
    INFO(c);
    CHECK(h.out.find(std::string("\n  ") + c + " ") != std::string::npos);
  }
  auto v = run_lctx("--version");
  CHECK(v.rc == 0);
  CHECK(v.out.rfind("lctx ", 0) == 0);
  CHECK(std::count(v.out.begin(), v.out.end(), '\n') == 1);
}

TEST_CASE("commands that need LibTorch are forwarded to lctx-torch", "[cli][front]") {
  auto r = run_lctx("run --help");
  if (exists(torch_bin())) {
    CHECK(r.rc == 0);
    CHECK(r.out.find("--model") != std::string::npos);
    CHECK(r.out.find("lctx run") != std::string::npos);
    auto e = run_lctx("run --model nosuchkind:x --out /tmp/lctx-front-test");
    CHECK(e.rc != 0);
    CHECK(e.out.rfind("lctx: error: ", 0) == 0);
  } else {
    CHECK(r.rc == 1);
    CHECK(r.out.rfind("lctx: error: `lctx run` needs LibTorch", 0) == 0);
  }
  auto bad = run_lctx("generate --suite nosuch --out /tmp/lctx-front-test");
  CHECK(bad.rc == 1);
  CHECK(bad.out.rfind("lctx: error: unknown suite", 0) == 0);
}
