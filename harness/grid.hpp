// The evaluation grid: model x suite x task x length x depth x sample index (x seed), its keys and shards.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lctx::harness {

// A --model value: "KIND:PATH" for a built-in checkpoint folder of any kind in models::model_kinds() (hsa,
// mamba, swa, and kinds registered with models::register_model_kind), or "openai:URL#MODEL" (an
// OpenAI-compatible server; URL is the API base, e.g. http://127.0.0.1:8000/v1).
struct ModelSpec {
  std::string spec;   // as given (the `model` field and the first part of keys)
  std::string kind;   // a model kind, or openai
  std::string path;   // checkpoint folder (built-in)
  std::string url;    // API base (openai)
  std::string name;   // display name: checkpoint folder name, or the served model name
  bool builtin() const { return kind != "openai"; }
};
ModelSpec parse_model_spec(const std::string& spec);  // throws Error with the accepted forms

struct GridItem {
  size_t model = 0;      // index into the run's model list
  std::string suite, task;
  int64_t length = 0;
  std::optional<double> depth;
  int64_t index = 0;
  uint64_t seed = 0;
  std::string key;       // result_key(...)
};

struct GridSpec {
  std::vector<std::string> models;   // specs, in command-line order
  std::string suite;
  std::vector<std::string> tasks;
  std::vector<int64_t> lengths;
  std::vector<double> depths;        // empty: the generator picks (depth null)
  std::vector<std::string> depth_tasks;  // tasks for which depths apply (supports_depth()); others get null
  int64_t samples = 1;
  uint64_t seed = 42;
};

// The full grid in execution order: model, task, length, depth, index (command-line order of each axis).
std::vector<GridItem> build_grid(const GridSpec& g);

// "i/N" -> (i, N) with 0 <= i < N. Throws Error.
std::pair<int, int> parse_shard(const std::string& s);
// --shard as a value: slice `index` of `count`.
struct Shard {
  int index = 0, count = 1;
  std::string str() const { return std::to_string(index) + "/" + std::to_string(count); }
};
// The items of shard i of N: the grid's keys are sorted (byte order), the k-th sorted key belongs to shard
// k mod N. Deterministic, disjoint, and covering; independent of the order of the command-line lists.
// Keeps execution order.
std::vector<GridItem> shard_items(const std::vector<GridItem>& grid, int shard_index, int shard_count);

}  // namespace lctx::harness
