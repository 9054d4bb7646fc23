#include "harness/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace lctx::harness {

using clk = std::chrono::steady_clock;

Progress::Progress(bool quiet, int tty) : quiet_(quiet), tty_(tty < 0 ? ::isatty(2) != 0 : tty != 0) {}

std::string Progress::format_duration(double s) {
  if (!(s >= 0) || s > 1e8) return "?";
  auto t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t < 60)
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(t));
  else if (t < 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(t / 3600),
                  static_cast<long long>(t / 60 % 60), static_cast<long long>(t % 60));
  return buf;
}

void Progress::begin(const std::string& label, int64_t total, int64_t already) {
  std::lock_guard<std::mutex> lock(mu_);
  label_ = label;
  total_ = total;
  already_ = already;
  done_ = failed_ = 0;
  start_ = last_print_ = clk::now();
  open_ = true;
  if (quiet_) return;
  if (tty_) {
    draw(false);
  } else {
    std::fprintf(stderr, "%s: %lld items", label_.c_str(), static_cast<long long>(total_));
    if (already_ > 0) std::fprintf(stderr, " (%lld done earlier)", static_cast<long long>(already_));
    std::fprintf(stderr, "\n");
  }
}

void Progress::step(bool failed) {
  std::lock_guard<std::mutex> lock(mu_);
  ++done_;
  if (failed) ++failed_;
  if (quiet_) return;
  auto now = clk::now();
  double since = std::chrono::duration<double>(now - last_print_).count();
  if (tty_ ? since >= 0.1 : since >= 10.0) {
    last_print_ = now;
    draw(false);
  }
}

void Progress::end() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!open_) return;
  open_ = false;
  if (!quiet_) draw(true);
}

void Progress::draw(bool final_line) {
  int64_t finished = already_ + done_;
  double elapsed = std::chrono::duration<double>(clk::now() - start_).count();
  double rate = done_ > 0 ? elapsed / static_cast<double>(done_) : 0.0;  // s per item
  double eta = rate * static_cast<double>(total_ - finished);
  int pct = total_ > 0 ? static_cast<int>(100 * finished / total_) : 100;
  char stats[160];
  if (final_line)
    std::snprintf(stats, sizeof stats, "%lld/%lld in %s%s", static_cast<long long>(finished),
                  static_cast<long long>(total_), format_duration(elapsed).c_str(),
                  done_ > 0 ? (" (" + std::to_string(rate).substr(0, 6) + " s/item)").c_str() : "");
  else
    std::snprintf(stats, sizeof stats, "%lld/%lld %3d%% %s ETA %s", static_cast<long long>(finished),
                  static_cast<long long>(total_), pct,
                  done_ > 0 ? (std::to_string(rate).substr(0, 6) + " s/item").c_str() : "",
                  done_ > 0 ? format_duration(eta).c_str() : "?");
  std::string fail = failed_ > 0 ? " failed " + std::to_string(failed_) : "";
  if (tty_) {
    const int width = 24;
    int fill = total_ > 0 ? static_cast<int>(width * finished / total_) : width;
    std::string bar(static_cast<size_t>(fill), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r\033[K%s [%s] %s%s", label_.c_str(), bar.c_str(), stats, fail.c_str());
    if (final_line) std::fprintf(stderr, "\n");
  } else {
    std::fprintf(stderr, "%s: %s%s\n", label_.c_str(), stats, fail.c_str());
  }
  std::fflush(stderr);
}

}  // namespace lctx::harness
