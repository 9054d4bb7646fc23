// Fuzzes the readers of results.jsonl: `lctx report`'s loader (reports::load_results) and `lctx run`'s resume
// (harness read_keys / read_records and the ResultStore's repair of a torn last line). Every input is refused
// with lctx::Error (naming FILE:LINE) or read; the store never loses a complete line.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "fuzz/fuzz_util.hpp"
#include "harness/results.hpp"
#include "reports/report.hpp"
#include "core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lctx_fuzz::write_input("results.jsonl", data, size);
  try {
    auto recs = lctx::reports::load_results({path});
    for (auto& r : recs)
      if (!(r.score >= 0 && r.score <= 1) || r.length < 0) std::abort();
  } catch (const lctx::Error&) {
  }
  std::set<std::string> keys;
  lctx::harness::read_keys(path, keys);
  auto recs = lctx::harness::read_records(path);
  (void)recs;
  try {
    lctx::harness::ResultStore store(path);  // repairs the file in place
    (void)store;
  } catch (const lctx::Error&) {
  }
  std::set<std::string> after;
  lctx::harness::read_keys(path, after);
  for (auto& k : keys)
    if (!after.count(k)) std::abort();  // a record readable before the repair is readable after it
  return 0;
}
