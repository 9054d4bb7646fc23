// Small string helpers shared by every layer.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace lctx {

// ASCII whitespace (" \t\n\r\f\v") removed from both ends.
std::string trim(std::string_view s);
// Items separated by `sep`, each trimmed, empty items dropped: "a, b,,c" -> {"a", "b", "c"}.
std::vector<std::string> split_list(std::string_view s, char sep = ',');
// {"a", "b"} joined with `sep`: "a, b".
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");

}  // namespace lctx
