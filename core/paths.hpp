// Where lctx finds its data and shipped files.
#pragma once
#include <string>

namespace lctx {

// source_dir(): the source tree this build was configured from.
// data_dir(): $LCTX_DATA, else <source>/data. cache_dir(): $LCTX_CACHE, else <data_dir>/cache.
// asset(rel): a file shipped in the repository (templates, default tokenizer): $LCTX_HOME/rel, else <source>/rel.
std::string source_dir();
std::string data_dir();
std::string cache_dir();
std::string asset(const std::string& rel);
std::string default_tokenizer_path();  // asset("assets/tokenizer/lctx-8k.model")

}  // namespace lctx
