#include "harness/results.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "core/files.hpp"

namespace lctx::harness {

namespace fs = std::filesystem;

std::string depth_key(std::optional<double> depth) {
  if (!depth) return "";
  double d = *depth;
  if (!std::isfinite(d)) throw Error("depth must be a finite number");
  char buf[64];
  for (int prec = 0; prec <= 17; ++prec) {  // shortest fixed-point form that reads back exactly
    std::snprintf(buf, sizeof buf, "%.*f", prec, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s = buf;
  if (s == "-0") s = "0";
  return s;
}

std::string result_key(const std::string& model, const std::string& suite, const std::string& task,
                       int64_t length, std::optional<double> depth, int64_t index, uint64_t seed) {
  return model + "|" + suite + "|" + task + "|" + std::to_string(length) + "|" + depth_key(depth) + "|" +
         std::to_string(index) + "|" + std::to_string(seed);
}

std::string results_file_name(int shard_index, int shard_count) {
  if (shard_count <= 1) return "results.jsonl";
  return "results.shard-" + std::to_string(shard_index) + "-of-" + std::to_string(shard_count) + ".jsonl";
}

// f(line, line_number) for every non-empty complete line, and for a last line without "\n" that is a whole
// JSON object.
template <class F>
static void for_each_line(const std::string& path, F&& f) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return;
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    ++line_no;
    if (nl == std::string::npos) {  // a last line without "\n": a whole record cut before its newline counts
      auto last = std::string_view(data).substr(pos);
      if (nlohmann::json::parse(last, nullptr, false).is_object()) f(last, line_no);
      break;
    }
    if (nl > pos) f(std::string_view(data).substr(pos, nl - pos), line_no);
    pos = nl + 1;
  }
}

void read_keys(const std::string& path, std::set<std::string>& keys, std::vector<int64_t>* bad_lines) {
  for_each_line(path, [&](std::string_view line, int64_t line_no) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("key") && j["key"].is_string())
      keys.insert(j["key"].get<std::string>());
    else if (bad_lines)
      bad_lines->push_back(line_no);
  });
}

std::vector<nlohmann::json> read_records(const std::string& path) {
  std::vector<nlohmann::json> out;
  for_each_line(path, [&](std::string_view line, int64_t) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object()) out.push_back(std::move(j));
  });
  return out;
}

std::vector<std::string> results_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (auto& e : list_dir(dir)) {
    const std::string& name = e.name;
    if (name.rfind("results", 0) == 0 && name.size() > 6 && name.substr(name.size() - 6) == ".jsonl" && e.is_file)
      out.push_back(e.path);
  }
  std::sort(out.begin(), out.end());
  return out;
}

RunLock::RunLock(const std::string& dir, const std::string& results_path, bool sharded) {
  const std::string lock_path = (fs::path(dir) / ".lctx-run.lock").string();
  dir_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (dir_fd_ < 0) throw Error("cannot open " + lock_path + ": " + std::strerror(errno));
  if (::flock(dir_fd_, (sharded ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    const int e = errno;
    ::close(dir_fd_);
    dir_fd_ = -1;
    if (e == EWOULDBLOCK)
      throw Error(dir + " is in use by another `lctx run` (" +
                  std::string(sharded ? "an unsharded run" : "a run or shard") +
                  " holds " + lock_path + "); wait for it to finish or use another --out");
    throw Error("cannot lock " + lock_path + ": " + std::strerror(e));
  }
  file_fd_ = ::open(results_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (file_fd_ < 0) throw Error("cannot open " + results_path + ": " + std::strerror(errno));
  if (::flock(file_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    ::close(file_fd_);
    ::close(dir_fd_);
    file_fd_ = dir_fd_ = -1;
    if (e == EWOULDBLOCK)
      throw Error(results_path + " is being written by another `lctx run` of the same shard; wait for it to finish");
    throw Error("cannot lock " + results_path + ": " + std::strerror(e));
  }
}

RunLock::~RunLock() {
  if (file_fd_ >= 0) ::close(file_fd_);
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

ResultStore::ResultStore(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
  // Find the end of the last complete line and drop anything after it.
  off_t size = ::lseek(fd_, 0, SEEK_END);
  if (size < 0) throw Error("cannot seek " + path + ": " + std::strerror(errno));
  off_t keep = size;
  if (size > 0) {
    const off_t chunk = 1 << 16;
    std::string buf;
    off_t end = size;
    bool found = false;
    while (end > 0 && !found) {
      off_t start = std::max<off_t>(0, end - chunk);
      buf.resize(static_cast<size_t>(end - start));
      ssize_t n = ::pread(fd_, buf.data(), buf.size(), start);
      if (n != static_cast<ssize_t>(buf.size())) throw Error("cannot read " + path + ": " + std::strerror(errno));
      auto p = buf.rfind('\n');
      if (p != std::string::npos) {
        keep = start + static_cast<off_t>(p) + 1;
        found = true;
      }
      end = start;
    }
    if (!found) keep = 0;
  }
  if (keep != size) {
    // The tail after the last newline: a whole record whose "\n" was not written is kept and completed;
    // anything else is the torn start of a record (a kill in the middle of its write) and is dropped.
    std::string tail(static_cast<size_t>(size - keep), '\0');
    if (::pread(fd_, tail.data(), tail.size(), keep) != static_cast<ssize_t>(tail.size()))
      throw Error("cannot read " + path + ": " + std::strerror(errno));
    if (nlohmann::json::parse(tail, nullptr, false).is_object()) {
      if (::pwrite(fd_, "\n", 1, size) != 1) throw Error("cannot write " + path + ": " + std::strerror(errno));
      repaired_ = true;
    } else {
      if (::ftruncate(fd_, keep) != 0) throw Error("cannot truncate " + path + ": " + std::strerror(errno));
      truncated_ = size - keep;
    }
    ::fsync(fd_);
  }
  ::close(fd_);
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
}

ResultStore::~ResultStore() {
  if (fd_ >= 0) ::close(fd_);
}

void ResultStore::append(const nlohmann::json& record) {
  std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  std::lock_guard<std::mutex> lock(mu_);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {  // one write() for a line in practice; loop only on a short write
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error("cannot write " + path_ + ": " + std::strerror(errno));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd_) != 0 && errno != EINVAL) throw Error("cannot fsync " + path_ + ": " + std::strerror(errno));
}

}  // namespace lctx::harness
