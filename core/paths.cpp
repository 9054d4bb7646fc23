#include "core/paths.hpp"

#include <cstdlib>

namespace lctx {

std::string source_dir() { return LCTX_SOURCE_DIR; }

std::string data_dir() {
  if (const char* e = std::getenv("LCTX_DATA"); e && *e) return e;
  return source_dir() + "/data";
}

std::string cache_dir() {
  if (const char* e = std::getenv("LCTX_CACHE"); e && *e) return e;
  return data_dir() + "/cache";
}

std::string asset(const std::string& rel) {
  if (const char* e = std::getenv("LCTX_HOME"); e && *e) return std::string(e) + "/" + rel;
  return source_dir() + "/" + rel;
}

std::string default_tokenizer_path() { return asset("assets/tokenizer/lctx-8k.model"); }

}  // namespace lctx
