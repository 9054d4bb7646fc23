// Fuzzes `lctx score`'s predictions reader and scorer (reports::score_files) on a RULER-named and a
// BABILong-named file: every input is refused with lctx::Error or scored within [0, 100].
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz/fuzz_util.hpp"
#include "reports/score.hpp"
#include "core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool dirs = [] {
    std::string cmd = "mkdir -p '" + lctx_fuzz::scratch() + "/niah_single_1' '" + lctx_fuzz::scratch() + "/qa2'";
    return std::system(cmd.c_str()) == 0;
  }();
  if (!dirs) std::abort();
  for (const char* rel : {"niah_single_1/4k.jsonl", "qa2/1k.jsonl"}) {
    const std::string path = lctx_fuzz::write_input(rel, data, size);
    try {
      lctx::reports::ScoreOptions so;
      lctx::reports::apply_metric_option(so, "auto");
      auto s = lctx::reports::score_files({path}, so);
      (void)lctx::reports::format_score_table(s);
      (void)lctx::reports::score_json(s, so).dump();
    } catch (const lctx::Error&) {
    }
  }
  return 0;
}
