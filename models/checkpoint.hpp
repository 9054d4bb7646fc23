// Checkpoint I/O: our own safetensors reader/writer (8-byte little-endian header length, JSON header with
// dtype / shape / data_offsets per tensor and optional "__metadata__" of string values, then the raw
// little-endian tensor bytes) and the checkpoint folder (config.json + model.safetensors; save_checkpoint and
// load_checkpoint are declared in model.hpp). Every malformed input throws lctx::Error with one line.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace lctx::models {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// dtypes: F32, BF16, F16 (tensors of other dtypes are refused). Writes PATH.tmp then renames it over PATH.
// metadata: a JSON object of string values (stored as "__metadata__"; empty -> omitted).
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const nlohmann::json& metadata = nlohmann::json::object());

struct SafetensorsFile {
  NamedTensors tensors;     // in file order of their data offsets; CPU tensors in the stored dtype
  nlohmann::json metadata;  // object ({} when absent)
};
SafetensorsFile read_safetensors(const std::string& path);

// The tensors a checkpoint holds for a model: named parameters then named buffers, CPU, contiguous.
NamedTensors model_tensors(torch::nn::Module& model);

// Checkpoint file names inside the folder.
inline constexpr const char* kCheckpointConfig = "config.json";
inline constexpr const char* kCheckpointWeights = "model.safetensors";

}  // namespace lctx::models
