// Exact receptive field of a stack of layers, for pruned prefill (docs/models.md, "Pruned prefill").
// A prefill call pushes positions first..last. Layer j of the prunable stack (0 = bottom) reads, for an output
// at position p, its input at p - reach[j] .. p (reach = window - 1 for causal sliding-window attention, 0 for
// a per-position layer such as an MLP or HSA's chunk retrieval). pull[j] > 0 (HSA chunk granularity, the chunk
// size): an output at p also needs the layer's output at its chunk's first position (the leader that selects
// for the chunk), so the output range starts at that chunk start.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace lctx::models {

struct LayerRows {
  int64_t in0 = 0;   // the layer's input is needed on positions in0..last
  int64_t out0 = 0;  // its output is needed (computed) on positions out0..last; in0 <= out0
};

// The rows each layer must compute so that the outputs at `last` and the K/V every later position can see
// (the last reach[j] inputs of each layer) are exact. Everything is clamped to `first` (the call's first
// position: what came before is already in the caches).
inline std::vector<LayerRows> receptive_rows(int64_t first, int64_t last, const std::vector<int64_t>& reach,
                                             const std::vector<int64_t>& pull) {
  const size_t n = reach.size();
  std::vector<LayerRows> r(n);
  int64_t need = last;  // outputs of layer j needed from here on
  for (size_t j = n; j-- > 0;) {
    int64_t out0 = need;
    if (j < pull.size() && pull[j] > 0) out0 = out0 / pull[j] * pull[j];
    out0 = std::max(first, out0);
    r[j].out0 = out0;
    r[j].in0 = std::max(first, out0 - reach[j]);
    need = r[j].in0;
  }
  return r;
}

}  // namespace lctx::models
