#include "reports/json_schema.hpp"

#include <cmath>

#include "core/error.hpp"

namespace lctx::reports {
namespace {

using json = nlohmann::json;

bool has_type(const json& v, const std::string& t) {
  if (t == "null") return v.is_null();
  if (t == "boolean") return v.is_boolean();
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "number") return v.is_number();
  if (t == "integer")
    return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  throw Error("schema: unknown type '" + t + "'");
}

const json& resolve(const json& s, const json& root) {
  if (s.is_object() && s.contains("$ref")) {
    std::string ref = s["$ref"].get<std::string>();
    const std::string pre = "#/definitions/";
    if (ref.rfind(pre, 0) != 0 || !root.contains("definitions") || !root["definitions"].contains(ref.substr(pre.size())))
      throw Error("schema: unsupported or unknown $ref '" + ref + "'");
    return resolve(root["definitions"][ref.substr(pre.size())], root);
  }
  return s;
}

void check(const json& v, const json& s_in, const json& root, const std::string& path, std::vector<std::string>& errs) {
  const json& s = resolve(s_in, root);
  if (s.is_boolean()) {
    if (!s.get<bool>()) errs.push_back(path + ": not allowed");
    return;
  }
  if (s.contains("type")) {
    bool ok = false;
    if (s["type"].is_string()) ok = has_type(v, s["type"].get<std::string>());
    else
      for (auto& t : s["type"]) ok = ok || has_type(v, t.get<std::string>());
    if (!ok) {
      errs.push_back(path + ": expected type " + s["type"].dump() + ", got " + v.type_name());
      return;
    }
  }
  if (s.contains("enum")) {
    bool ok = false;
    for (auto& e : s["enum"]) ok = ok || e == v;
    if (!ok) errs.push_back(path + ": " + v.dump() + " is not one of " + s["enum"].dump());
  }
  if (s.contains("const") && s["const"] != v) errs.push_back(path + ": expected " + s["const"].dump());
  if (v.is_number()) {
    if (s.contains("minimum") && v.get<double>() < s["minimum"].get<double>())
      errs.push_back(path + ": below minimum " + s["minimum"].dump());
    if (s.contains("maximum") && v.get<double>() > s["maximum"].get<double>())
      errs.push_back(path + ": above maximum " + s["maximum"].dump());
  }
  if (v.is_object()) {
    if (s.contains("required"))
      for (auto& r : s["required"])
        if (!v.contains(r.get<std::string>())) errs.push_back(path + ": missing required property '" + r.get<std::string>() + "'");
    for (auto it = v.begin(); it != v.end(); ++it) {
      std::string p = path + "." + it.key();
      if (s.contains("properties") && s["properties"].contains(it.key())) {
        check(it.value(), s["properties"][it.key()], root, p, errs);
      } else if (s.contains("additionalProperties")) {
        const json& ap = s["additionalProperties"];
        if (ap.is_boolean()) {
          if (!ap.get<bool>()) errs.push_back(p + ": additional property not allowed");
        } else {
          check(it.value(), ap, root, p, errs);
        }
      }
    }
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>())
      errs.push_back(path + ": fewer than " + s["minItems"].dump() + " items");
    if (s.contains("items"))
      for (size_t i = 0; i < v.size(); ++i) check(v[i], s["items"], root, path + "[" + std::to_string(i) + "]", errs);
  }
}

}  // namespace

std::vector<std::string> validate_json(const json& doc, const json& schema) {
  std::vector<std::string> errs;
  check(doc, schema, schema, "$", errs);
  return errs;
}

}  // namespace lctx::reports
