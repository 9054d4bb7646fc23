// Teacher-forced exact match from greedy ids (harness/run.hpp).
#include "harness/run.hpp"
#include "tests/catch.hpp"

using lctx::harness::teacher_forced_match;

TEST_CASE("teacher-forced exact match: the generated ids must begin with the answer's", "[run]") {
  const std::vector<int32_t> ans = {5, 6, 7};
  CHECK(teacher_forced_match({5, 6, 7}, ans, true) == true);
  CHECK(teacher_forced_match({5, 6, 7, 9, 9}, ans, false) == true);  // what follows the answer does not count
  CHECK(teacher_forced_match({5, 6, 8}, ans, false) == false);       // the last token is not the argmax
  CHECK(teacher_forced_match({4}, ans, true) == false);
  CHECK(teacher_forced_match({5, 6}, ans, true) == false);           // EOS was the argmax before the end
  CHECK(teacher_forced_match({}, ans, true) == false);
  CHECK_FALSE(teacher_forced_match({5, 6}, ans, false).has_value()); // the token budget ended first: undecided
  CHECK(teacher_forced_match({7, 6}, ans, false) == false);          // a mismatch decides even when cut
  CHECK(teacher_forced_match({1}, {}, false) == true);
}
