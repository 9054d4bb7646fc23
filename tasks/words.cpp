#include "tasks/words.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "core/error.hpp"
#include "core/paths.hpp"
#include "core/files.hpp"

namespace lctx {

static bool plain_word(const std::string& w) {
  if (w.size() < 2) return false;
  for (char c : w)
    if (!std::islower(static_cast<unsigned char>(c))) return false;
  return true;
}

static void finish(std::vector<std::string>& v, const std::string& what) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  if (v.empty()) throw Error("word list " + what + " is empty");
}

static std::string find_wordnet(const std::string& name) {
  std::string a = data_dir() + "/wordnet/" + name;
  if (file_exists(a)) return a;
  std::string b = "/usr/share/wordnet/" + name;
  if (file_exists(b)) return b;
  throw Error("word list " + name + " not found in " + data_dir() + "/wordnet or /usr/share/wordnet (run scripts/setup.sh)");
}

static std::vector<std::string> wordnet_lemmas(const std::string& name) {
  std::istringstream in(read_file(find_wordnet(name)));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == ' ') continue;  // license header lines start with two spaces
    std::string lemma = line.substr(0, line.find(' '));
    if (plain_word(lemma)) out.push_back(lemma);
  }
  finish(out, name);
  return out;
}

std::shared_ptr<const WordLists> WordLists::load() {
  auto w = std::make_shared<WordLists>();
  w->nouns = wordnet_lemmas("index.noun");
  w->adjectives = wordnet_lemmas("index.adj");
  w->verbs = wordnet_lemmas("index.verb");
  for (const char* f : {"/names-male/names.txt", "/names-female/names.txt"}) {
    std::string path = data_dir() + f;
    if (!file_exists(path)) throw Error("name list " + path + " not found (run scripts/setup.sh)");
    std::istringstream in(read_file(path));
    std::string line;
    while (std::getline(in, line)) {
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
      if (line.size() >= 2 && std::isupper(static_cast<unsigned char>(line[0]))) w->names.push_back(line);
    }
  }
  finish(w->names, "names");
  return w;
}

}  // namespace lctx
