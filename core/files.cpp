#include "core/files.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace fs = std::filesystem;

namespace lctx {

std::vector<DirEntry> list_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw Error("cannot list " + dir + ": " + std::strerror(errno));
  std::vector<DirEntry> out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    DirEntry de;
    de.name = n;
    de.path = dir + (!dir.empty() && dir.back() == '/' ? "" : "/") + n;
    struct stat st;
    if (::stat(de.path.c_str(), &st) == 0) {
      de.is_file = S_ISREG(st.st_mode);
      de.is_dir = S_ISDIR(st.st_mode);
    }
    out.push_back(std::move(de));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return out;
}

void remove_tree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw Error("cannot remove " + path + ": " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    DIR* d = ::opendir(path.c_str());
    if (!d) throw Error("cannot remove " + path + ": " + std::strerror(errno));
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(path + "/" + n);
    }
    ::closedir(d);
    for (auto& n : names) remove_tree(n);
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) throw Error("cannot remove " + path + ": " + std::strerror(errno));
  } else if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    throw Error("cannot remove " + path + ": " + std::strerror(errno));
  }
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error("cannot read " + path + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void ensure_dir(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec || !fs::is_directory(path)) throw Error("cannot create directory " + path + ": " + ec.message());
  std::string probe = path + "/.lctx-write-probe";
  FILE* f = std::fopen(probe.c_str(), "wb");
  if (!f) throw Error("cannot write to directory " + path + ": " + std::strerror(errno));
  std::fclose(f);
  std::remove(probe.c_str());
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) throw Error("cannot write " + tmp_ + ": " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::write(std::string_view s) {
  if (!f_) throw Error("cannot write " + path_ + ": already committed");
  if (std::fwrite(s.data(), 1, s.size(), f_) != s.size())
    throw Error("cannot write " + tmp_ + ": " + std::strerror(errno));
  bytes_ += s.size();
}

void AtomicFile::commit() {
  if (!f_) throw Error("cannot write " + path_ + ": already committed");
  const bool ok = std::fflush(f_) == 0;
  const int err = errno;
  const bool closed = std::fclose(f_) == 0;
  f_ = nullptr;
  if (!ok || !closed) {
    std::remove(tmp_.c_str());
    throw Error("cannot write " + tmp_ + ": " + std::strerror(ok ? errno : err));
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp_.c_str());
    throw Error("cannot rename " + tmp_ + " to " + path_ + ": " + std::strerror(e));
  }
}

void write_file_atomic(const std::string& path, std::string_view data) {
  AtomicFile f(path);
  f.write(data);
  f.commit();
}

}  // namespace lctx
