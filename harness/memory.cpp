#include "harness/memory.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#ifdef LCTX_HAVE_C10_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace lctx::harness {

static int64_t status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  size_t n = std::strlen(field);
  while (std::getline(in, line))
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':')
      return std::strtoll(line.c_str() + n + 1, nullptr, 10);
  return 0;
}

int64_t host_rss_bytes() { return status_kb("VmRSS") * 1024; }
int64_t host_peak_rss_bytes() { return status_kb("VmHWM") * 1024; }

bool reset_host_peak() {
  int fd = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, "5", 1) == 1;
  ::close(fd);
  return ok;
}

// The allocator API moved between LibTorch 1.13 (DeviceStats in c10::cuda::CUDACachingAllocator, int device)
// and 2.x (c10::CachingDeviceAllocator::DeviceStats, c10::DeviceIndex); both keep the free functions below in
// c10::cuda::CUDACachingAllocator, and StatType::AGGREGATE is index 0 of every StatArray.
bool device_stats_available() {
#ifdef LCTX_HAVE_C10_CUDA
  return true;
#else
  return false;
#endif
}

void reset_device_peak(int device) {
#ifdef LCTX_HAVE_C10_CUDA
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<decltype(c10::Device(c10::kCUDA).index())>(device));
#else
  (void)device;
#endif
}

std::optional<int64_t> device_peak_bytes(int device) {
#ifdef LCTX_HAVE_C10_CUDA
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(
      static_cast<decltype(c10::Device(c10::kCUDA).index())>(device));
  return static_cast<int64_t>(stats.allocated_bytes[0].peak);
#else
  (void)device;
  return std::nullopt;
#endif
}

}  // namespace lctx::harness
