// Native bAbI world simulator (tasks qa1 ... qa20). Each task simulates a small world (actors, locations,
// objects, animals, shapes ...) with valid actions only, writes the statements in the surface forms of the
// released bAbI v1.2 data, and asks questions whose answers follow from the statements so far.
// Everything is drawn from an lctx::Rng, so a story is a pure function of the RNG state.
#pragma once
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace lctx::babi {

// One line of a story: a statement, or a question with its answer and supporting statement lines.
struct Line {
  std::string text;               // "Mary moved to the bathroom." / "Where is Mary? " (released spacing)
  bool is_question = false;
  std::string answer;             // questions only
  std::vector<int> support;       // questions only: indices of supporting lines in the story (ascending)
};
using Story = std::vector<Line>;

// One question of a story as BABILong uses it: every statement of the story before the question (earlier
// question lines removed), the question, its answer, and the supporting facts as indices into `facts`.
struct Instance {
  std::vector<std::string> facts;
  std::string question, answer;
  std::vector<int> support;       // ascending indices into facts
  int question_number = 0;        // 0-based among the story's questions
};

// The BABILong catalogue's task names, in order.
const std::vector<std::string>& task_names();
bool is_task(const std::string& task);
// Released folder names: "qa1_single-supporting-fact" ... "qa20_agents-motivations".
std::string task_title(const std::string& task);
// BABILong's TASK_LABELS for the task (every answer the simulator produces is one label, or for qa8 a
// comma-joined list of labels).
const std::vector<std::string>& task_labels(const std::string& task);

// Generates one story. Throws Error for an unknown task.
Story generate_story(const std::string& task, Rng& rng);
// The story's questions as BABILong samples, in story order.
std::vector<Instance> instances(const Story& story);

}  // namespace lctx::babi
