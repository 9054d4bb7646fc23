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

enum Set { kHeadline, kOther };

TaskInfo babi(const char* name, Set set, const char* title, const char* story, const Labels& labels,
              bool list_answer = false) {
  return {name,
          "babi",
          {{"story", story}, {"labels", labels}, {"list_answer", list_answer}},
          0,
          20,  // BABILong's generation budget (max_new_tokens)
          "babilong",
          true,
          set == kHeadline,
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
          babi("qa1", kHeadline, "single-supporting-fact", "actor_location", rooms),
          babi("qa2", kHeadline, "two-supporting-facts", "object_location", rooms),
          babi("qa3", kHeadline, "three-supporting-facts", "object_location_before", rooms),
          babi("qa4", kHeadline, "two-arg-relations", "compass_relation", rooms),
          babi("qa5", kHeadline, "three-arg-relations", "giving",
               {"Bill", "Fred", "Jeff", "Mary", "apple", "football", "milk"}),
          babi("qa6", kOther, "yes-no-questions", "actor_location_yes_no", yesno),
          babi("qa7", kOther, "counting", "counting", {"none", "one", "three", "two"}),
          babi("qa8", kOther, "lists-sets", "carried_list", {"apple", "football", "milk", "nothing"}, true),
          babi("qa9", kOther, "simple-negation", "negation", yesno),
          babi("qa10", kOther, "indefinite-knowledge", "indefinite", {"maybe", "no", "yes"}),
          babi("qa11", kOther, "basic-coreference", "coreference", rooms),
          babi("qa12", kOther, "conjunction", "conjunction", rooms),
          babi("qa13", kOther, "compound-coreference", "compound_coreference", rooms),
          babi("qa14", kOther, "time-reasoning", "time",
               {"bedroom", "cinema", "kitchen", "office", "park", "school"}),
          babi("qa15", kOther, "basic-deduction", "deduction", {"cat", "mouse", "sheep", "wolf"}),
          babi("qa16", kOther, "basic-induction", "induction", {"gray", "green", "white", "yellow"}),
          babi("qa17", kOther, "positional-reasoning", "positions", yesno),
          babi("qa18", kOther, "size-reasoning", "sizes", yesno),
          babi("qa19", kOther, "path-finding", "path",
               {"e,e", "e,n", "e,s", "n,e", "n,n", "n,w", "s,e", "s,s", "s,w", "w,n", "w,s", "w,w"}, true),
          babi("qa20", kOther, "agents-motivations", "motivations",
               {"bedroom", "bored", "garden", "hungry", "kitchen", "thirsty", "tired"}),
      }};
  return s;
}

}  // namespace lctx
