// BABILong assembler: bAbI facts (tasks/babi) spread in order through background sentences of the haystack
// corpus, formatted with BABILong's prompt structure. The registry entry points (make_babilong_generator,
// babilong_task_names) are declared in tasks/sample.hpp; this header exposes the pieces tests look at.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace lctx::babilong {

// Largest shortfall (in tokens) of a generated prompt below its budget (length - tokens_to_generate):
// the context is cut at whole corpus words, so the shortfall is below one word's tokens plus the re-encoding of
// the two context edges; documented in docs/babilong.md and asserted by the tests.
constexpr int kSlack = 48;

// The template file (tasks/templates/babilong.json or GenOptions::templates), parsed and checked: every task
// of the catalogue has "instruction", "examples" and "post_prompt" strings. Throws Error otherwise.
nlohmann::json load_templates(const std::string& path);
nlohmann::json parse_templates(const std::string& body, const std::string& path);  // the checks of load_templates
std::string default_templates_path();

}  // namespace lctx::babilong
