// Word sources for keys, distractors and vocabularies: WordNet lemmas (apt wordnet-base, copied to
// data/wordnet by setup) and first names (npm @stdlib datasets, in data/names-*). Sorted, deduplicated,
// single lowercase ASCII words only, so that draws are deterministic.
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace lctx {

struct WordLists {
  std::vector<std::string> nouns, adjectives, verbs, names;
  // Loads from data_dir() (falls back to /usr/share/wordnet). Throws Error if a list is missing.
  static std::shared_ptr<const WordLists> load();
};

}  // namespace lctx
