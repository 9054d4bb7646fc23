// RULER metrics and BABILong compare_answers (compatible and strict).
#include <cmath>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "tasks/metrics.hpp"
#include "tests/catch.hpp"

using namespace lctx;

TEST_CASE("ruler_postprocess strips and maps control characters") {
  CHECK(ruler_postprocess("  hello  ") == "hello");
  CHECK(ruler_postprocess("\n\t a\tb\x01" "c \r\n") == "a\nb\nc");
  CHECK(ruler_postprocess("\x1f\x1e x \x1c") == "x");       // Python strip() removes \x1c-\x1f too
  CHECK(ruler_postprocess("\xc2\xa0 x\xe3\x80\x80") == "x");  // NBSP and ideographic space are whitespace
  CHECK(ruler_postprocess("") == "");
  CHECK(ruler_postprocess("\x01\x02") == "");
}

TEST_CASE("ruler string_match_all and string_match_part") {
  std::vector<std::string> refs = {"1234567", "7654321", "5555555", "9999999"};
  CHECK(ruler_string_match_all("1234567, 7654321, 5555555 and 9999999", refs) == 1.0);
  CHECK(ruler_string_match_all("1234567 and 5555555", refs) == 0.5);
  CHECK(ruler_string_match_all("", refs) == 0.0);
  CHECK(ruler_string_match_part("I think 7654321.", refs) == 1.0);
  CHECK(ruler_string_match_part("nothing here", refs) == 0.0);
  CHECK(ruler_string_match_part("the answer is ÉCOLE NORMALE", {"École normale"}) == 1.0);
  double two_thirds = ruler_string_match_all("VAR ABCDE VAR FGHIJ", {"abcde", "fghij", "klmno"});
  CHECK(std::abs(two_thirds - 2.0 / 3.0) < 1e-12);
  // the prediction is post-processed before matching: a control character splits nothing it should not
  CHECK(ruler_string_match_part("\x02 Paris\x03", {"paris"}) == 1.0);
  REQUIRE_THROWS_AS(ruler_string_match_all("x", {}), Error);
  REQUIRE_THROWS_AS(ruler_string_match_part("x", {}), Error);
}

TEST_CASE("score_prediction dispatches and rejects unknown metrics") {
  CHECK(score_prediction("string_match_all", "a b", {"a", "c"}, "", "niah_single_1") == 0.5);
  CHECK(score_prediction("string_match_part", "a b", {"a", "c"}, "", "qa_1") == 1.0);
  CHECK(score_prediction("babilong", "kitchen", {"kitchen"}, "Where is John? ", "qa1") == 1.0);
  CHECK(score_prediction("babilong-strict", "office", {"kitchen"}, "Where is John? ", "qa1") == 0.0);
  REQUIRE_THROWS_WITH(score_prediction("exact", "a", {"a"}, "", "qa1"),
                      "unknown metric 'exact' (known: string_match_all, string_match_part, babilong, babilong-strict)");
  REQUIRE_THROWS_AS(score_prediction("babilong", "a", {}, "", "qa1"), Error);
}

TEST_CASE("babilong_labels covers qa1-qa20 and long task names") {
  for (int i = 1; i <= 20; ++i) CHECK(!babilong_labels("qa" + std::to_string(i)).empty());
  CHECK(babilong_labels("qa1_single-supporting-fact").size() == 6);
  CHECK(babilong_labels("qa19").size() == 12);
  CHECK(babilong_labels("qa5").front() == "Bill");
  REQUIRE_THROWS_AS(babilong_labels("qa21"), Error);
  REQUIRE_THROWS_AS(babilong_labels("niah_single_1"), Error);
}

// Every task: the reference answer scores in both modes, a wrong label and an empty answer do not.
TEST_CASE("babilong: reference answers pass, wrong and empty answers fail, every task") {
  struct Case { const char* task; const char* question; const char* target; const char* wrong; };
  const Case cases[] = {
      {"qa1", "Where is Mary? ", "bathroom", "hallway"},
      {"qa2", "Where is the football? ", "garden", "office"},
      {"qa3", "Where was the apple before the kitchen? ", "office", "bedroom"},
      {"qa4", "What is north of the kitchen?", "garden", "bedroom"},
      {"qa5", "What did Fred give to Jeff? ", "milk", "apple"},
      {"qa6", "Is John in the kitchen? ", "yes", "no"},
      {"qa7", "How many objects is Daniel carrying? ", "two", "three"},
      {"qa8", "What is Sandra carrying? ", "apple,milk", "apple"},
      {"qa9", "Is Mary in the office? ", "no", "yes"},
      {"qa10", "Is Bill in the park? ", "maybe", "yes"},
      {"qa11", "Where is Daniel? ", "hallway", "garden"},
      {"qa12", "Where is Sandra? ", "kitchen", "office"},
      {"qa13", "Where is John? ", "bedroom", "bathroom"},
      {"qa14", "Where was Julie before the school? ", "park", "cinema"},
      {"qa15", "What is gertrude afraid of? ", "wolf", "cat"},
      {"qa16", "What color is Greg? ", "yellow", "gray"},
      {"qa17", "Is the pink rectangle to the right of the blue square? ", "yes", "no"},
      {"qa18", "Does the box fit in the suitcase? ", "yes", "no"},
      {"qa19", "How do you go from the kitchen to the garden? ", "s,e", "n,w"},
      {"qa20", "Where will jason go? ", "kitchen", "garden"},
  };
  for (const auto& c : cases) {
    INFO(c.task);
    CHECK(babilong_compare(c.target, c.target, c.question, c.task));
    CHECK(babilong_compare_strict(c.target, c.target, c.question, c.task));
    CHECK(babilong_compare(c.target, std::string(c.target) + ".", c.question, c.task));
    CHECK(babilong_compare_strict(c.target, std::string("Answer: ") + c.target + ". Because ...", c.question,
                                  c.task));
    CHECK(!babilong_compare(c.target, c.wrong, c.question, c.task));
    CHECK(!babilong_compare_strict(c.target, c.wrong, c.question, c.task));
    CHECK(!babilong_compare(c.target, "", c.question, c.task));
    CHECK(!babilong_compare_strict(c.target, "", c.question, c.task));
  }
}

TEST_CASE("babilong compatible mode keeps the original quirks") {
  SECTION("lowercase and first sentence only") {
    CHECK(babilong_compare("Kitchen", "The KITCHEN. Not the office.", "Where is John? ", "qa1"));
    CHECK(!babilong_compare("kitchen", "A. kitchen", "Where is John? ", "qa1"));          // "a" has no label
    CHECK(!babilong_compare("kitchen", "kitchen or office", "Where is John? ", "qa1"));   // two labels
  }
  SECTION("model echoing examples: text after <context> / <example> is dropped") {
    CHECK(babilong_compare("kitchen", "kitchen <example> office", "Where is John? ", "qa1"));
    CHECK(babilong_compare("kitchen", "kitchen\n<context>\nJohn went to the office", "Where is John? ", "qa1"));
    CHECK(!babilong_compare("kitchen", "<context> kitchen", "Where is John? ", "qa1"));
  }
  SECTION("labels mentioned in the question are ignored") {
    CHECK(babilong_compare("office", "It was in the kitchen before, then office", "Where was the apple before the kitchen? ", "qa3"));
    CHECK(babilong_compare("Fred", "Fred gave it to Jeff", "Who gave the football to Jeff? ", "qa5"));
    CHECK(babilong_compare("hungry", "he went to the kitchen because he was hungry", "Why did jason go to the kitchen? ", "qa20"));
  }
  SECTION("qa7: 'none' can never be correct, 'one' is a substring of it") {
    CHECK(!babilong_compare("none", "none", "How many objects is Mary carrying? ", "qa7"));
    CHECK(babilong_compare("one", "one", "How many objects is Mary carrying? ", "qa7"));
    CHECK(!babilong_compare("one", "none", "How many objects is Mary carrying? ", "qa7"));
  }
  SECTION("'no' also matches inside not/know/nothing") {
    CHECK(!babilong_compare("yes", "yes, I do not doubt it", "Is John in the kitchen? ", "qa6"));
    CHECK(!babilong_compare("yes", "yes as far as I know", "Is John in the kitchen? ", "qa6"));
    CHECK(babilong_compare("no", "I do not know", "Is John in the kitchen? ", "qa6"));   // "no" found, no "yes"
    CHECK(!babilong_compare("maybe", "maybe, nobody can tell", "Is Bill in the park? ", "qa10"));
  }
  SECTION("qa8 lists: order free, exact set, 'nothing'") {
    CHECK(babilong_compare("apple,milk", "milk,apple", "What is Mary carrying? ", "qa8"));
    CHECK(babilong_compare("apple,milk", "apple and milk", "What is Mary carrying? ", "qa8"));
    CHECK(babilong_compare("apple,milk", "apple, milk", "What is Mary carrying? ", "qa8"));
    CHECK(!babilong_compare("apple,milk", "apple,milk,football", "What is Mary carrying? ", "qa8"));
    CHECK(babilong_compare("nothing", "nothing", "What is Mary carrying? ", "qa8"));
    CHECK(!babilong_compare("apple, milk", "apple,milk", "What is Mary carrying? ", "qa8"));  // " milk" never a label
  }
  SECTION("qa19: 'n, w' fails, 'n,w' passes; short targets are not split") {
    CHECK(babilong_compare("n,w", "n,w", "How do you go from the garden to the office? ", "qa19"));
    CHECK(!babilong_compare("n,w", "n, w", "How do you go from the garden to the office? ", "qa19"));
    CHECK(!babilong_compare("n,w", "north, west", "How do you go from the garden to the office? ", "qa19"));
    CHECK(!babilong_compare("n,w", "e,n,w", "How do you go from the garden to the office? ", "qa19"));
  }
}

TEST_CASE("babilong strict mode fixes the quirks") {
  SECTION("qa7 none/one") {
    CHECK(babilong_compare_strict("none", "none", "How many objects is Mary carrying? ", "qa7"));
    CHECK(babilong_compare_strict("none", "None.", "How many objects is Mary carrying? ", "qa7"));
    CHECK(!babilong_compare_strict("one", "none", "How many objects is Mary carrying? ", "qa7"));
    CHECK(!babilong_compare_strict("none", "one", "How many objects is Mary carrying? ", "qa7"));
    CHECK(babilong_compare_strict("one", "one", "How many objects is Mary carrying? ", "qa7"));
  }
  SECTION("whole words: 'no' inside not/know/nothing/nobody is not a label") {
    CHECK(babilong_compare_strict("yes", "yes, I do not doubt it", "Is John in the kitchen? ", "qa6"));
    CHECK(babilong_compare_strict("yes", "yes as far as I know", "Is John in the kitchen? ", "qa6"));
    CHECK(!babilong_compare_strict("no", "I do not know", "Is John in the kitchen? ", "qa6"));
    CHECK(babilong_compare_strict("maybe", "maybe, nobody can tell", "Is Bill in the park? ", "qa10"));
    CHECK(!babilong_compare_strict("yes", "yes or no", "Is John in the kitchen? ", "qa6"));
  }
  SECTION("tolerant comma spacing in qa8 and qa19") {
    CHECK(babilong_compare_strict("n,w", "n, w", "How do you go from the garden to the office? ", "qa19"));
    CHECK(babilong_compare_strict("n,w", "N , W.", "How do you go from the garden to the office? ", "qa19"));
    CHECK(!babilong_compare_strict("n,w", "w,n", "How do you go from the garden to the office? ", "qa19"));
    CHECK(!babilong_compare_strict("n,w", "e,n,w", "How do you go from the garden to the office? ", "qa19"));
    CHECK(babilong_compare_strict("apple, milk", "apple,milk", "What is Mary carrying? ", "qa8"));
    CHECK(babilong_compare_strict("apple,milk", "milk , apple", "What is Mary carrying? ", "qa8"));
    CHECK(!babilong_compare_strict("apple,milk", "apple", "What is Mary carrying? ", "qa8"));
    CHECK(!babilong_compare_strict("apple,milk", "apple,milk,football", "What is Mary carrying? ", "qa8"));
    CHECK(babilong_compare_strict("nothing", "Nothing.", "What is Mary carrying? ", "qa8"));
  }
  SECTION("unchanged rules: first sentence, question labels excluded, one label only") {
    CHECK(babilong_compare_strict("office", "It was in the kitchen before, then office", "Where was the apple before the kitchen? ", "qa3"));
    CHECK(!babilong_compare_strict("kitchen", "kitchen or office", "Where is John? ", "qa1"));
    CHECK(!babilong_compare_strict("kitchen", "A. kitchen", "Where is John? ", "qa1"));
    CHECK(!babilong_compare_strict("fred", "Freddy", "Who gave the football to Jeff? ", "qa5"));  // whole word
    CHECK(babilong_compare("fred", "Freddy", "Who gave the football to Jeff? ", "qa5"));        // substring
  }
}
