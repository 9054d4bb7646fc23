// Fuzzes the checkpoint config.json parsers: the architecture readers of the built-in kinds (HsaConfig,
// SwaConfig, MambaConfig ::from_json, the keys a config.json's "arch" or `lctx train --config` holds). Every
// input is refused with lctx::Error or accepted, and an accepted config reads back identically from its
// to_json(). No model is built: the parsers (models/config.cpp) are free of LibTorch.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "models/config.hpp"
#include "core/error.hpp"

template <class C>
static void check(const nlohmann::json& arch) {
  try {
    C c = C::from_json(arch);
    const nlohmann::json back = c.to_json();
    if (C::from_json(back).to_json() != back) std::abort();
  } catch (const lctx::Error&) {
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto j = nlohmann::json::parse(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size,
                                 nullptr, false);
  if (j.is_discarded()) return 0;
  const nlohmann::json arch = j.is_object() && j.contains("arch") ? j["arch"] : j;
  check<lctx::models::HsaConfig>(arch);
  check<lctx::models::SwaConfig>(arch);
  check<lctx::models::MambaConfig>(arch);
  return 0;
}
