// The task catalogues: every row builds a generator that agrees with it, and a task is named (as a string
// literal or JSON string) in one catalogue file only across the C++ sources and JSON files outside tests/ and
// docs/ (the prompt template data, keyed by template section, and committed checkpoints and reports aside).
#include <dirent.h>
#include <sys/stat.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "tasks/catalog.hpp"
#include "tasks/metrics.hpp"
#include "tasks/sample.hpp"
#include "tests/catch.hpp"

using namespace lctx;

namespace {

const Resources& res() {
  static Resources r = load_resources("", "");
  return r;
}

void walk(const std::string& dir, const std::string& rel, std::vector<std::string>& out) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == ".." || n[0] == '.') continue;
    std::string p = dir + "/" + n, r = rel.empty() ? n : rel + "/" + n;
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) continue;
    if (S_ISDIR(st.st_mode)) {
      if (rel.empty() && (n == "tests" || n == "docs" || n == "data" || n.rfind("build", 0) == 0)) continue;
      walk(p, r, out);
    } else if (S_ISREG(st.st_mode)) {
      out.push_back(r);
    }
  }
  ::closedir(d);
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("every catalogue row builds a generator that agrees with it", "[catalog]") {
  GenOptions o;
  o.qa_data = lctx_test::fixture("qa");
  std::set<std::string> suite_names;
  for (const SuiteInfo* s : suites()) {
    INFO(s->name);
    CHECK(suite_names.insert(s->name).second);
    CHECK(&suite_info(s->name) == s);
    CHECK_FALSE(s->headline().empty());
    std::set<std::string> names;
    for (const TaskInfo& t : s->tasks) {
      INFO(t.name);
      CHECK(names.insert(t.name).second);
      CHECK(t.params.is_object());
      CHECK(t.tokens_to_generate > 0);
      CHECK(suite_of_task(t.name) == s);
      auto g = make_generator(s->name, t.name, res(), o);
      CHECK(g->suite() == s->name);
      CHECK(g->name() == t.name);
      CHECK(g->min_length() == t.min_length);
      CHECK(g->supports_depth() == t.depth);
      const int64_t len = std::max<int64_t>(t.min_length, 2048);
      Sample smp = g->generate(len, 0);
      CHECK(smp.metric == t.metric);
      CHECK(smp.tokens_to_generate == t.tokens_to_generate);
      CHECK_NOTHROW(score_prediction(t.metric, "x", smp.outputs, smp.question, t.name));
    }
    CHECK(task_names(s->name) == s->names());
  }
  REQUIRE_THROWS_AS(suite_info("nosuch"), Error);
  REQUIRE_THROWS_AS(ruler_catalog().at("nosuch"), Error);
  CHECK(babilong_catalog().find("qa3_two-supporting-facts") == &babilong_catalog().tasks[2]);
  CHECK(babilong_catalog().find("qa10_x")->name == "qa10");
  CHECK(ruler_catalog().find("qa_1_x") == nullptr);  // RULER names have no long forms
}

TEST_CASE("each task is named in exactly one catalogue file of the sources", "[catalog]") {
  std::vector<std::string> files;
  walk(LCTX_SOURCE_ROOT, "", files);
  REQUIRE(files.size() > 50);
  std::vector<std::pair<std::string, std::string>> texts;  // path, contents
  for (const auto& f : files) {
    // Prompt template data is keyed by template section (the --templates file format), not a task list.
    if (f.rfind("tasks/templates/", 0) == 0) continue;
    // Seed inputs of the fuzz targets are copies of such files (and of results), data rather than sources.
    if (f.rfind("fuzz/corpus/", 0) == 0) continue;
    // Committed outputs of lctx (trained checkpoints' recorded recipes, evaluation reports) are records that
    // name the tasks they used, like docs/: not sources.
    if (f.rfind("assets/checkpoints/", 0) == 0 || f.rfind("reports/paper/", 0) == 0) continue;
    const auto dot = f.rfind('.');
    const std::string ext = dot == std::string::npos ? "" : f.substr(dot);
    if (ext != ".cpp" && ext != ".hpp" && ext != ".cu" && ext != ".cuh" && ext != ".json") continue;
    texts.emplace_back(f, slurp(std::string(LCTX_SOURCE_ROOT) + "/" + f));
  }
  for (const SuiteInfo* s : suites())
    for (const TaskInfo& t : s->tasks) {
      std::vector<std::string> where;
      const std::string quoted = "\"" + t.name + "\"";
      for (const auto& [f, text] : texts)
        if (text.find(quoted) != std::string::npos) where.push_back(f);
      INFO(t.name << " is written in: " << [&] {
        std::string s;
        for (auto& w : where) s += w + " ";
        return s;
      }());
      CHECK(where.size() == 1);
    }
}
