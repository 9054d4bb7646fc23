// The results store: append-only JSONL (docs/results-schema.md), one record per grid item, crash-safe.
// Each record is one line written with a single write() followed by fsync(); on open, an incomplete last line
// (left by a kill in the middle of a write) is truncated, and a whole last record lacking only its "\n" gets it,
// so a file never holds a torn or duplicated record and never loses a complete one.
#pragma once
#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lctx::harness {

inline constexpr const char* kResultSchema = "lctx.result/1";

// Canonical depth text for keys: "" when the grid fixes none, else the shortest decimal ("50", "12.5").
std::string depth_key(std::optional<double> depth);
// "model|suite|task|length|depth|index|seed" (docs/results-schema.md).
std::string result_key(const std::string& model, const std::string& suite, const std::string& task,
                       int64_t length, std::optional<double> depth, int64_t index, uint64_t seed);

// Results file name in DIR: "results.jsonl" unsharded, "results.shard-<i>-of-<N>.jsonl" for --shard i/N.
std::string results_file_name(int shard_index, int shard_count);

// Reads the keys of every complete, parseable record in `path` (missing file: none). A last line without a
// trailing newline counts only when it is a whole JSON object (otherwise a writer may be in the middle of it).
// `bad_lines`, when given, receives the 1-based numbers of complete lines that are not JSON records (damaged
// lines, which readers skip; their items are done again).
void read_keys(const std::string& path, std::set<std::string>& keys, std::vector<int64_t>* bad_lines = nullptr);
// All records (complete lines) of one file, in file order.
std::vector<nlohmann::json> read_records(const std::string& path);
// Every DIR/results*.jsonl file, sorted by name.
std::vector<std::string> results_files(const std::string& dir);

// Keeps two `lctx run` processes from writing one results folder at once (which would write every record
// twice or interleave them): an flock on DIR/.lctx-run.lock, exclusive for an unsharded run and shared for a
// shard (shards of one grid run side by side), plus an exclusive flock on the shard's own results file. Held
// until destroyed (a killed process releases it). Throws Error naming the folder when another run holds it.
class RunLock {
 public:
  RunLock(const std::string& dir, const std::string& results_path, bool sharded);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int dir_fd_ = -1, file_fd_ = -1;
};

class ResultStore {
 public:
  // Opens (creating) `path` for appending; first truncates a torn last line, or completes a whole last record
  // that lacks its "\n". Throws Error.
  explicit ResultStore(const std::string& path);
  ~ResultStore();
  ResultStore(const ResultStore&) = delete;
  ResultStore& operator=(const ResultStore&) = delete;

  // Appends one record (compact JSON + '\n') with one write() and fsync(). Thread-safe.
  void append(const nlohmann::json& record);
  const std::string& path() const { return path_; }
  // Bytes dropped from an incomplete last line when the file was opened (0 if none).
  int64_t truncated_bytes() const { return truncated_; }
  // True when the last line was a whole record lacking its "\n", which was appended when the file was opened.
  bool repaired_newline() const { return repaired_; }

 private:
  std::string path_;
  int fd_ = -1;
  int64_t truncated_ = 0;
  bool repaired_ = false;
  std::mutex mu_;
};

}  // namespace lctx::harness
