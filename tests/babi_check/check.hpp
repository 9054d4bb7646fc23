// Independent bAbI checker: reads the fact sentences of a sample (text only, no generator state), replays
// them, and answers the question. Written separately from tasks/babi so that tests can cross-check the
// simulator's answers. Throws lctx::Error when a sentence or the question cannot be parsed, or when the facts
// do not determine an answer.
#pragma once
#include <string>
#include <vector>

namespace lctx::babi_check {

std::string answer(const std::string& task, const std::vector<std::string>& facts, const std::string& question);

}  // namespace lctx::babi_check
