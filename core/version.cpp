#include "core/version.hpp"

namespace lctx {

std::string version_string() { return LCTX_VERSION; }
std::string git_hash() { return LCTX_GIT_HASH; }

}  // namespace lctx
