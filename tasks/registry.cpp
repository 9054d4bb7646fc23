#include <algorithm>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "core/paths.hpp"
#include "tasks/catalog.hpp"
#include "tasks/sample.hpp"

namespace lctx {

namespace {

using Factory = std::unique_ptr<TaskGenerator> (*)(const std::string&, const Resources&, const GenOptions&);

// Each suite's catalogue with the function that builds its generators.
Factory factory(const SuiteInfo& suite) {
  if (&suite == &ruler_catalog()) return make_ruler_generator;
  if (&suite == &babilong_catalog()) return make_babilong_generator;
  throw Error("suite " + suite.name + " has no generators in this build");
}

}  // namespace

std::vector<std::string> task_names(const std::string& suite) { return suite_info(suite).names(); }

std::vector<std::string> expand_tasks(const std::string& suite, const std::string& list) {
  const SuiteInfo& s = suite_info(suite);
  if (list == "all" || list.empty()) return s.names();
  auto want = split_list(list);
  for (auto& t : want)
    if (std::none_of(s.tasks.begin(), s.tasks.end(), [&](const TaskInfo& i) { return i.name == t; }))
      throw Error("unknown task '" + t + "' for suite " + suite + " (known: " + join(s.names()) + ")");
  return want;
}

std::unique_ptr<TaskGenerator> make_generator(const std::string& suite, const std::string& task,
                                              const Resources& res, const GenOptions& opts) {
  const SuiteInfo& s = suite_info(suite);
  expand_tasks(suite, task);  // validates
  return factory(s)(task, res, opts);
}

Resources load_resources(const std::string& tokenizer_path, const std::string& haystack_dir) {
  Resources r;
  r.tokenizer = Tokenizer::load(tokenizer_path.empty() ? default_tokenizer_path() : tokenizer_path);
  r.corpus = Corpus::load(haystack_dir.empty() ? Corpus::default_dir() : haystack_dir, *r.tokenizer);
  r.words = WordLists::load();
  return r;
}

}  // namespace lctx
