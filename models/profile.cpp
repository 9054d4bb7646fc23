// LCTX_PROFILE phase timing (see profile.hpp).
#include "models/profile.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "models/torch_compat.hpp"

namespace lctx::models::profile {

namespace {
struct Phase {
  int64_t calls = 0;
  double seconds = 0;
};
struct Table {
  std::mutex mu;
  std::map<std::string, Phase> phases;
  ~Table() {
    if (!enabled()) return;
    auto s = summary();
    if (!s.empty()) std::fputs(s.c_str(), stderr);
  }
};
Table& table() {
  static Table t;
  return t;
}
}  // namespace

bool enabled() {
  static const bool on = [] {
    const char* v = std::getenv("LCTX_PROFILE");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return on;
}

void add(const char* phase, double seconds) {
  auto& t = table();
  std::lock_guard<std::mutex> lk(t.mu);
  auto& p = t.phases[phase];
  ++p.calls;
  p.seconds += seconds;
}

std::string summary() {
  auto& t = table();
  std::lock_guard<std::mutex> lk(t.mu);
  if (t.phases.empty()) return {};
  double total = 0;
  for (const auto& [k, p] : t.phases) total += p.seconds;
  std::string out = "lctx profile (LCTX_PROFILE=1; device synchronised around every phase)\n";
  char line[160];
  std::snprintf(line, sizeof line, "  %-12s %10s %12s %7s\n", "phase", "calls", "seconds", "share");
  out += line;
  for (const auto& [k, p] : t.phases) {
    std::snprintf(line, sizeof line, "  %-12s %10lld %12.4f %6.1f%%\n", k.c_str(), static_cast<long long>(p.calls),
                  p.seconds, total > 0 ? 100.0 * p.seconds / total : 0.0);
    out += line;
  }
  std::snprintf(line, sizeof line, "  %-12s %10s %12.4f\n", "total", "", total);
  out += line;
  return out;
}

void Scope::start() {
  compat::synchronize(dev_);
  t0_ = std::chrono::steady_clock::now();
}
void Scope::stop() {
  compat::synchronize(dev_);
  add(phase_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
}

}  // namespace lctx::models::profile
