#include "tasks/catalog.hpp"

#include "core/error.hpp"
#include "core/strings.hpp"

namespace lctx {

bool TaskInfo::matches(std::string_view task) const {
  if (task == name) return true;
  return !title.empty() && task.size() > name.size() + 1 && task.substr(0, name.size()) == name &&
         task[name.size()] == '_';
}

std::vector<std::string> SuiteInfo::names() const {
  std::vector<std::string> v;
  for (const auto& t : tasks) v.push_back(t.name);
  return v;
}

std::vector<std::string> SuiteInfo::headline() const {
  std::vector<std::string> v;
  for (const auto& t : tasks)
    if (t.headline) v.push_back(t.name);
  return v;
}

const TaskInfo* SuiteInfo::find(std::string_view task) const {
  for (const auto& t : tasks)
    if (t.name == task) return &t;
  for (const auto& t : tasks)
    if (t.matches(task)) return &t;
  return nullptr;
}

const TaskInfo& SuiteInfo::at(std::string_view task) const {
  if (const TaskInfo* t = find(task)) return *t;
  throw Error("unknown task '" + std::string(task) + "' for suite " + name + " (known: " + join(names()) + ")");
}

int SuiteInfo::rank(std::string_view task) const {
  const TaskInfo* t = find(task);
  return t ? static_cast<int>(t - tasks.data()) : -1;
}

const std::vector<const SuiteInfo*>& suites() {
  static const std::vector<const SuiteInfo*> v = {&ruler_catalog(), &babilong_catalog()};
  return v;
}

std::vector<std::string> suite_names() {
  std::vector<std::string> v;
  for (const SuiteInfo* s : suites()) v.push_back(s->name);
  return v;
}

const SuiteInfo* find_suite(std::string_view suite) {
  for (const SuiteInfo* s : suites())
    if (s->name == suite) return s;
  return nullptr;
}

const SuiteInfo& suite_info(std::string_view suite) {
  if (const SuiteInfo* s = find_suite(suite)) return *s;
  throw Error("unknown suite '" + std::string(suite) + "' (known: " + join(suite_names()) + ")");
}

const SuiteInfo* suite_of_task(std::string_view task) {
  for (const SuiteInfo* s : suites())
    if (s->find(task)) return s;
  return nullptr;
}

}  // namespace lctx
