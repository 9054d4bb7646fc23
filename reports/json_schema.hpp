// A validator for the subset of JSON Schema (draft-07) that lctx's own schemas use: type (string or list),
// required, properties, additionalProperties (bool or schema), items (schema), enum, const, minimum, maximum,
// minItems, pattern-free. $ref to "#/definitions/NAME" is resolved against the root schema.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lctx::reports {

// Returns the list of violations ("$.models[0].name: expected type string"); empty when valid.
std::vector<std::string> validate_json(const nlohmann::json& doc, const nlohmann::json& schema);

}  // namespace lctx::reports
