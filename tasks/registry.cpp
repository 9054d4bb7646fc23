#include <algorithm>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "core/paths.hpp"
#include "tasks/sample.hpp"

namespace lctx {

std::vector<std::string> task_names(const std::string& suite) {
  if (suite == "ruler") return ruler_task_names();
  if (suite == "babilong") return babilong_task_names();
  throw Error("unknown suite '" + suite + "' (known: ruler, babilong)");
}

std::vector<std::string> expand_tasks(const std::string& suite, const std::string& list) {
  auto known = task_names(suite);
  if (list == "all" || list.empty()) return known;
  auto want = split_list(list);
  for (auto& t : want)
    if (std::find(known.begin(), known.end(), t) == known.end())
      throw Error("unknown task '" + t + "' for suite " + suite + " (known: " + join(known) + ")");
  return want;
}

std::unique_ptr<TaskGenerator> make_generator(const std::string& suite, const std::string& task,
                                              const Resources& res, const GenOptions& opts) {
  expand_tasks(suite, task);  // validates
  if (suite == "ruler") return make_ruler_generator(task, res, opts);
  return make_babilong_generator(task, res, opts);
}

Resources load_resources(const std::string& tokenizer_path, const std::string& haystack_dir) {
  Resources r;
  r.tokenizer = Tokenizer::load(tokenizer_path.empty() ? default_tokenizer_path() : tokenizer_path);
  r.corpus = Corpus::load(haystack_dir.empty() ? Corpus::default_dir() : haystack_dir, *r.tokenizer);
  r.words = WordLists::load();
  return r;
}

}  // namespace lctx
