// Files and folders. Every failure throws Error("cannot <verb> PATH: reason").
#pragma once
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace lctx {

std::string read_file(const std::string& path);
// Writes PATH.tmp, then renames it to PATH: a reader never sees a half-written file.
void write_file_atomic(const std::string& path, std::string_view data);
// Creates a directory (and parents); throws if it cannot be created or written.
void ensure_dir(const std::string& path);
bool file_exists(const std::string& path);

// A file written in pieces that appears under its name only on commit(): writes go to PATH.tmp, commit()
// closes and renames it; destroying an uncommitted AtomicFile removes PATH.tmp and leaves PATH as it was.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(std::string_view s);
  void commit();
  size_t bytes() const { return bytes_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  size_t bytes_ = 0;
};

// Directory listing and recursive removal with POSIX calls. std::filesystem's directory iterators are not used
// anywhere: LibTorch >= 2.5 wheels export their own statically linked copies of those libstdc++ symbols,
// which then replace the system ones in any binary that links LibTorch and crash (pytorch/pytorch#133437).
struct DirEntry {
  std::string name, path;  // file name; dir + "/" + name
  bool is_file = false, is_dir = false;  // after following symlinks
};
std::vector<DirEntry> list_dir(const std::string& dir);  // sorted by name, no "." / ".."; throws Error
void remove_tree(const std::string& path);               // like rm -rf: no error when missing; throws Error

}  // namespace lctx
