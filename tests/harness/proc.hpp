// Child processes for the end-to-end tests: spawn `lctx` with stdout/stderr to files, wait, kill.
#pragma once
#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace lctx_test {

struct Proc {
  pid_t pid = -1;
  std::string out_path, err_path;

  static Proc spawn(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path) {
    Proc p;
    p.out_path = out_path;
    p.err_path = err_path;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    if (posix_spawn(&p.pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) p.pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return p;
  }
  int exit_code = -1;  // set once the child is reaped (by wait() or running())
  // Exit status (or 128 + signal); the saved one when running() already reaped the child.
  int wait() {
    int st = 0;
    if (pid <= 0) return exit_code;
    ::waitpid(pid, &st, 0);
    pid = -1;
    exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return exit_code;
  }
  bool running() {
    if (pid <= 0) return false;
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      pid = -1;
      exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return false;
    }
    return true;
  }
  void kill9() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      wait();
    }
  }
  ~Proc() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      wait();
    }
  }
  Proc() = default;
  Proc(Proc&& o) noexcept
      : pid(o.pid), out_path(std::move(o.out_path)), err_path(std::move(o.err_path)), exit_code(o.exit_code) {
    o.pid = -1;
  }
  Proc& operator=(Proc&& o) noexcept {
    std::swap(pid, o.pid);
    std::swap(exit_code, o.exit_code);
    out_path = o.out_path;
    err_path = o.err_path;
    return *this;
  }
};

inline std::string read_text(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Runs to completion; returns the exit status, fills out/err.
inline int run_cmd(const std::vector<std::string>& args, const std::string& tmp, std::string* out = nullptr,
                   std::string* err = nullptr) {
  auto p = Proc::spawn(args, tmp + "/cmd.out", tmp + "/cmd.err");
  int rc = p.wait();
  if (out) *out = read_text(tmp + "/cmd.out");
  if (err) *err = read_text(tmp + "/cmd.err");
  return rc;
}

}  // namespace lctx_test
