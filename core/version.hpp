// Build identity for metadata (run.json, manifests, reports, `lctx --version`).
#pragma once
#include <string>

namespace lctx {

std::string version_string();  // "0.1.0"
std::string git_hash();        // short hash at configure time, or "unknown"

}  // namespace lctx
