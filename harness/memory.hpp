// Memory measurement for results records: host RSS peaks from /proc and the CUDA caching allocator's peak.
#pragma once
#include <cstdint>
#include <optional>

namespace lctx::harness {

// Current and peak resident set size of this process in bytes (/proc/self/status VmRSS, VmHWM); 0 if unknown.
int64_t host_rss_bytes();
int64_t host_peak_rss_bytes();
// Resets VmHWM to the current RSS (writes "5" to /proc/self/clear_refs). False where the kernel refuses.
bool reset_host_peak();

// CUDA caching allocator (LibTorch built with CUDA): peak allocated bytes on `device` since the last reset.
// nullopt when this build has no CUDA allocator statistics.
bool device_stats_available();
void reset_device_peak(int device);
std::optional<int64_t> device_peak_bytes(int device);

}  // namespace lctx::harness
