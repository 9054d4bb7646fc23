#include "harness/grid.hpp"

#include <algorithm>
#include <filesystem>
#include <unordered_map>

#include "harness/results.hpp"
#include "models/model.hpp"
#include "core/error.hpp"

namespace lctx::harness {

ModelSpec parse_model_spec(const std::string& spec) {
  const auto kinds = models::model_kinds();
  std::string forms = "expected ";
  for (const auto& k : kinds) forms += k + ":PATH, ";
  forms = forms.substr(0, forms.size() - 2) + " or openai:URL#MODEL";
  auto colon = spec.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == spec.size())
    throw Error("bad --model '" + spec + "': " + forms);
  if (spec.find('|') != std::string::npos) throw Error("bad --model '" + spec + "': '|' is not allowed");
  ModelSpec m;
  m.spec = spec;
  m.kind = spec.substr(0, colon);
  std::string rest = spec.substr(colon + 1);
  if (m.kind != "openai" && std::find(kinds.begin(), kinds.end(), m.kind) != kinds.end()) {
    m.path = rest;
    std::string p = rest;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    m.name = std::filesystem::path(p).filename().string();
    if (m.name.empty()) m.name = p;
  } else if (m.kind == "openai") {
    auto hash = rest.rfind('#');
    if (hash == std::string::npos || hash + 1 == rest.size())
      throw Error("bad --model '" + spec + "': openai models need the served model name: openai:URL#MODEL");
    m.url = rest.substr(0, hash);
    m.name = rest.substr(hash + 1);
    if (m.url.rfind("http://", 0) != 0 && m.url.rfind("https://", 0) != 0)
      throw Error("bad --model '" + spec + "': the URL must start with http:// or https://");
  } else {
    throw Error("bad --model '" + spec + "': unknown kind '" + m.kind + "' (" + forms + ")");
  }
  return m;
}

std::vector<GridItem> build_grid(const GridSpec& g) {
  std::vector<GridItem> out;
  for (size_t mi = 0; mi < g.models.size(); ++mi)
    for (auto& task : g.tasks) {
      bool with_depth = !g.depths.empty() &&
                        std::find(g.depth_tasks.begin(), g.depth_tasks.end(), task) != g.depth_tasks.end();
      std::vector<std::optional<double>> depths;
      if (with_depth)
        for (double d : g.depths) depths.emplace_back(d);
      else
        depths.emplace_back(std::nullopt);
      for (int64_t len : g.lengths)
        for (auto& d : depths)
          for (int64_t i = 0; i < g.samples; ++i) {
            GridItem it;
            it.model = mi;
            it.suite = g.suite;
            it.task = task;
            it.length = len;
            it.depth = d;
            it.index = i;
            it.seed = g.seed;
            it.key = result_key(g.models[mi], g.suite, task, len, d, i, g.seed);
            out.push_back(std::move(it));
          }
    }
  return out;
}

std::pair<int, int> parse_shard(const std::string& s) {
  auto slash = s.find('/');
  auto bad = [&] { return Error("bad --shard '" + s + "': expected i/N with 0 <= i < N (e.g. 0/4)"); };
  if (slash == std::string::npos) throw bad();
  try {
    size_t p1 = 0, p2 = 0;
    std::string a = s.substr(0, slash), b = s.substr(slash + 1);
    int i = std::stoi(a, &p1), n = std::stoi(b, &p2);
    if (p1 != a.size() || p2 != b.size() || n < 1 || i < 0 || i >= n) throw bad();
    return {i, n};
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {
    throw bad();
  }
}

std::vector<GridItem> shard_items(const std::vector<GridItem>& grid, int shard_index, int shard_count) {
  if (shard_count <= 1) return grid;
  std::vector<std::string> keys;
  keys.reserve(grid.size());
  for (auto& it : grid) keys.push_back(it.key);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::unordered_map<std::string, size_t> rank;
  for (size_t k = 0; k < keys.size(); ++k) rank[keys[k]] = k;
  std::vector<GridItem> out;
  for (auto& it : grid)
    if (static_cast<int>(rank[it.key] % static_cast<size_t>(shard_count)) == shard_index) out.push_back(it);
  return out;
}

}  // namespace lctx::harness
