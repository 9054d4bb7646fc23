// Fuzzes the template file parsers (`--templates FILE`) of RULER and BABILong: every input is refused with
// lctx::Error or accepted with every field the generators read present.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tasks/babilong/babilong.hpp"
#include "tasks/catalog.hpp"
#include "core/error.hpp"
#include "tasks/ruler/ruler.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  try {
    auto t = lctx::ruler::Templates::parse(body, "fuzz.json");
    (void)t->str("niah", "needle");
    if (t->noise_sentences().empty()) std::abort();
  } catch (const lctx::Error&) {
  }
  try {
    auto j = lctx::babilong::parse_templates(body, "fuzz.json");
    for (const auto& task : lctx::babilong_catalog().names())
      if (!j["tasks"][task]["post_prompt"].is_string()) std::abort();
  } catch (const lctx::Error&) {
  }
  return 0;
}
