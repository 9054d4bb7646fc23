// The BABILong catalogue: one row per bAbI task. `family` is always "babi" (tasks/babilong/babilong.cpp
// assembles every row the same way); `params` is what the bAbI world simulator and the metric read:
//   story        the simulator's story kind (tasks/babi/babi.cpp maps kinds to world simulations)
//   labels       BABILong's TASK_LABELS: every answer the simulator produces is one of them (a comma-joined
//                list of them for list answers)
//   list_answer  the answer is a comma-separated list (compared as a set)
// `title` gives the released folder name ("qa1_single-supporting-fact"); qa1-qa5 are the headline set.
#include "tasks/catalog.hpp"

namespace lctx {

namespace {

using Labels = std::vector<std::string>;

TaskInfo babi(int n, const char* title, const char* story, const Labels& labels, bool list_answer = false) {
  return {"qa" + std::to_string(n),
          "babi",
          {{"story", story}, {"labels", labels}, {"list_answer", list_answer}},
          0,
          20,  // BABILong's generation budget (max_new_tokens)
          "babilong",
          true,
          n <= 5,
          title,
          ""};
}

}  // namespace

const SuiteInfo& babilong_catalog() {
  static const Labels rooms = {"bathroom", "bedroom", "garden", "hallway", "kitchen", "office"};
  static const Labels yesno = {"no", "yes"};
  static const SuiteInfo s{
      "babilong",
      "BABILong",
      "qa1-qa5",
      {
          babi(1, "single-supporting-fact", "actor_location", rooms),
          babi(2, "two-supporting-facts", "object_location", rooms),
          babi(3, "three-supporting-facts", "object_location_before", rooms),
          babi(4, "two-arg-relations", "compass_relation", rooms),
          babi(5, "three-arg-relations", "giving", {"Bill", "Fred", "Jeff", "Mary", "apple", "football", "milk"}),
          babi(6, "yes-no-questions", "actor_location_yes_no", yesno),
          babi(7, "counting", "counting", {"none", "one", "three", "two"}),
          babi(8, "lists-sets", "carried_list", {"apple", "football", "milk", "nothing"}, true),
          babi(9, "simple-negation", "negation", yesno),
          babi(10, "indefinite-knowledge", "indefinite", {"maybe", "no", "yes"}),
          babi(11, "basic-coreference", "coreference", rooms),
          babi(12, "conjunction", "conjunction", rooms),
          babi(13, "compound-coreference", "compound_coreference", rooms),
          babi(14, "time-reasoning", "time", {"bedroom", "cinema", "kitchen", "office", "park", "school"}),
          babi(15, "basic-deduction", "deduction", {"cat", "mouse", "sheep", "wolf"}),
          babi(16, "basic-induction", "induction", {"gray", "green", "white", "yellow"}),
          babi(17, "positional-reasoning", "positions", yesno),
          babi(18, "size-reasoning", "sizes", yesno),
          babi(19, "path-finding", "path",
               {"e,e", "e,n", "e,s", "n,e", "n,n", "n,w", "s,e", "s,s", "s,w", "w,n", "w,s", "w,w"}, true),
          babi(20, "agents-motivations", "motivations",
               {"bedroom", "bored", "garden", "hungry", "kitchen", "thirsty", "tired"}),
      }};
  return s;
}

}  // namespace lctx
