// bAbI simulator: surface forms, labels, and agreement with the independent checker (tests/babi_check).
#include <algorithm>
#include <map>
#include <set>

#include "tasks/babi/babi.hpp"
#include "tests/babi_check/check.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"
#include "core/hash.hpp"
#include "core/rng.hpp"
#include "tests/catch.hpp"

using namespace lctx;

namespace {

bool is_label_answer(const std::string& task, const std::string& answer) {
  auto& labels = babi::task_labels(task);
  auto has = [&](const std::string& a) { return std::find(labels.begin(), labels.end(), a) != labels.end(); };
  if (has(answer)) return true;
  if (task != "qa8") return false;
  for (auto& part : split_list(answer))
    if (!has(part)) return false;
  return true;
}

// Generates `stories` stories per task and checks every question against the checker. Returns the number of
// questions checked.
int cross_check(const std::string& task, int stories, uint64_t seed) {
  int n = 0;
  for (int i = 0; i < stories; ++i) {
    Rng r(sample_seed("babi-test", task, 0, i, seed));
    auto story = babi::generate_story(task, r);
    auto insts = babi::instances(story);
    REQUIRE(!insts.empty());
    for (auto& in : insts) {
      INFO(task << " story " << i << " question '" << in.question << "'");
      REQUIRE(!in.facts.empty());
      REQUIRE(is_label_answer(task, in.answer));
      REQUIRE(!in.support.empty());
      for (int s : in.support) REQUIRE(s < static_cast<int>(in.facts.size()));
      for (auto& f : in.facts) {
        REQUIRE(f.back() == '.');
        REQUIRE(std::isupper(static_cast<unsigned char>(f[0])));
      }
      std::string got;
      try {
        got = babi_check::answer(task, in.facts, in.question);
      } catch (const Error& e) {
        std::string facts;
        for (auto& f : in.facts) facts += f + " | ";
        FAIL(std::string(e.what()) + " facts: " + facts);
      }
      REQUIRE(got == in.answer);
      ++n;
    }
  }
  return n;
}

}  // namespace

TEST_CASE("bAbI: twenty tasks with titles and labels", "[babi]") {
  REQUIRE(babi::task_names().size() == 20);
  CHECK(babi::task_title("qa1") == "qa1_single-supporting-fact");
  CHECK(babi::task_title("qa20") == "qa20_agents-motivations");
  CHECK(babi::task_labels("qa19").size() == 12);
  REQUIRE_THROWS_AS(babi::task_labels("qa21"), Error);
  Rng r(1);
  REQUIRE_THROWS_WITH(babi::generate_story("qa0", r), lctx_test::Contains("unknown bAbI task"));
}

TEST_CASE("bAbI: released surface forms", "[babi]") {
  std::map<std::string, std::vector<babi::Instance>> by_task;
  for (auto& t : babi::task_names()) {
    Rng r(sample_seed("babi-forms", t, 0, 0, 7));
    by_task[t] = babi::instances(babi::generate_story(t, r));
  }
  // Question spacing: trailing space everywhere except qa4.
  for (auto& [t, insts] : by_task)
    for (auto& in : insts) {
      INFO(t << ": '" << in.question << "'");
      if (t == "qa4") {
        CHECK(in.question.back() == '?');
      } else {
        CHECK(in.question.size() >= 2);
        CHECK(in.question.substr(in.question.size() - 2) == "? ");
      }
    }
  // qa1: five questions, two facts each; qa4: two facts and one question.
  CHECK(by_task["qa1"].size() == 5);
  CHECK(by_task["qa1"][4].facts.size() == 10);
  CHECK(by_task["qa4"].size() == 1);
  CHECK(by_task["qa4"][0].facts.size() == 2);
  CHECK(by_task["qa16"][0].facts.size() == 9);
  CHECK(by_task["qa19"][0].facts.size() == 4);
  CHECK(by_task["qa15"].size() == 4);
  CHECK(by_task["qa17"].size() == 8);
  // Lowercased names in qa15 and qa20 questions.
  for (auto t : {"qa15", "qa20"})
    for (auto& in : by_task[t]) {
      std::string lower = in.question;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      CHECK(in.question.substr(1) == lower.substr(1));
    }
  // Support sizes per task.
  for (auto& in : by_task["qa1"]) CHECK(in.support.size() == 1);
  for (auto& in : by_task["qa2"]) CHECK(in.support.size() == 2);
  for (auto& in : by_task["qa5"]) CHECK(in.support.size() == 1);
  for (auto& in : by_task["qa19"]) CHECK(in.support.size() == 2);
}

TEST_CASE("bAbI: stories are deterministic", "[babi]") {
  for (auto& t : babi::task_names()) {
    Rng a(99), b(99);
    auto s1 = babi::generate_story(t, a), s2 = babi::generate_story(t, b);
    REQUIRE(s1.size() == s2.size());
    for (size_t i = 0; i < s1.size(); ++i) REQUIRE(s1[i].text == s2[i].text);
  }
}

TEST_CASE("bAbI: the independent checker agrees on 200 stories per task", "[babi][check]") {
  for (auto& t : babi::task_names()) {
    int n = cross_check(t, 200, 42);
    CHECK(n >= 200);
  }
}

TEST_CASE("bAbI: the checker rejects sentences it cannot read", "[babi][check]") {
  REQUIRE_THROWS_AS(babi_check::answer("qa1", {"Mary flew to the moon."}, "Where is Mary? "), Error);
  REQUIRE_THROWS_AS(babi_check::answer("qa1", {"Mary went to the kitchen."}, "Where is John? "), Error);
  CHECK(babi_check::answer("qa1", {"Mary went to the kitchen.", "Mary journeyed to the office."}, "Where is Mary? ") ==
        "office");
  CHECK(babi_check::answer("qa19", {"The kitchen is north of the garden.", "The office is west of the kitchen."},
                           "How do you go from the garden to the office? ") == "n,w");
  REQUIRE_THROWS_AS(babi_check::answer("qa99", {}, "?"), Error);
}

// The full count: 1,000 stories per task (run with `lctx_test_tasks "[.full]"`; about a minute).
TEST_CASE("bAbI: the independent checker agrees on 1000 stories per task", "[.full]") {
  int total = 0;
  for (auto& t : babi::task_names()) total += cross_check(t, 1000, 4242);
  CHECK(total >= 20000);
}
