// The results store: append-only JSONL (docs/results-schema.md), one record per grid item, crash-safe.
// Each record is one line written with a single write() followed by fsync(); on open, an incomplete last line
// (left by a kill in the middle of a write) is truncated, so a file never holds a corrupt or duplicated record.
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

// Reads the keys of every complete, parseable record in `path` (missing file: none). Lines without a trailing
// newline are ignored (a writer may be in the middle of them).
void read_keys(const std::string& path, std::set<std::string>& keys);
// All records (complete lines) of one file, in file order.
std::vector<nlohmann::json> read_records(const std::string& path);
// Every DIR/results*.jsonl file, sorted by name.
std::vector<std::string> results_files(const std::string& dir);

class ResultStore {
 public:
  // Opens (creating) `path` for appending; truncates an incomplete last line first. Throws Error.
  explicit ResultStore(const std::string& path);
  ~ResultStore();
  ResultStore(const ResultStore&) = delete;
  ResultStore& operator=(const ResultStore&) = delete;

  // Appends one record (compact JSON + '\n') with one write() and fsync(). Thread-safe.
  void append(const nlohmann::json& record);
  const std::string& path() const { return path_; }
  // Bytes dropped from an incomplete last line when the file was opened (0 if none).
  int64_t truncated_bytes() const { return truncated_; }

 private:
  std::string path_;
  int fd_ = -1;
  int64_t truncated_ = 0;
  std::mutex mu_;
};

}  // namespace lctx::harness
