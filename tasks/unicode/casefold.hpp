// Python's str.lower() on UTF-8 text, for every code point (tables generated at build time from the Unicode data
// files: tasks/unicode/gen_case_tables.cpp). RULER's and BABILong's scorers lowercase with it.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace lctx {

// str.lower(): full lowercase mappings (U+0130 -> "i\u0307"), final sigma in context (U+03A3 -> U+03C2 when
// preceded by a cased letter and not followed by one, case-ignorable characters skipped), everything else by
// the simple mapping. Bytes that are not valid UTF-8 are copied as they are.
std::string py_lower(std::string_view s);
// Lowercase of one code point out of context (U+03A3 -> U+03C3); writes up to 3 code points, returns how many.
int lower_code_point(uint32_t cp, uint32_t out[3]);
bool is_cased(uint32_t cp);
bool is_case_ignorable(uint32_t cp);
const char* unicode_version();  // of the data files the tables came from, e.g. "15.0.0"

}  // namespace lctx
