// The sample stream: one sample generated on demand from (suite, task, length, index, seed[, depth]).
// This is the library API the harness uses; `lctx generate` is a loop over it that writes JSONL.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tasks/corpus.hpp"
#include "tasks/tokenizer.hpp"
#include "tasks/words.hpp"

namespace lctx {

struct Sample {
  std::string suite;             // "ruler" | "babilong"
  std::string task;              // a task of the suite's catalogue (tasks/catalog.hpp)
  int64_t length = 0;            // target length in tokens (RULER: counts tokens_to_generate, as max_seq_length)
  int64_t index = 0;
  uint64_t seed = 0;             // the run seed the sample was derived from
  std::optional<double> depth;   // requested depth in percent, when the grid fixes one

  // Suite-native fields. RULER: `input` is the prompt without the answer prefix. BABILong: `input` is the
  // context (facts + background), `question` and `target` as in the public dataset.
  std::string input;
  std::string question;
  std::string answer_prefix;
  std::vector<std::string> outputs;  // references (RULER `outputs`; BABILong: {target})
  std::string target;                // BABILong target ("" for RULER)

  // What the model sees: prompt_text() = prompt if set (BABILong's formatted template), else input + answer_prefix.
  std::string prompt;
  std::string prompt_text() const { return prompt.empty() ? input + answer_prefix : prompt; }
  int64_t prompt_tokens = 0;          // exact count of prompt_text() in the tokenizer
  std::vector<int32_t> prompt_ids;    // == tokenizer.encode(prompt_text()); filled when GenOptions::keep_ids
  int tokens_to_generate = 0;
  std::string metric;                 // "string_match_all" | "string_match_part" | "babilong"

  // lctx metadata: depths (percent), needle/fact token positions in the prompt, tokenizer hash, sample seed,
  // haystack kind, template id ... (written under "lctx" in the JSONL records).
  nlohmann::json meta = nlohmann::json::object();
};

struct GenOptions {
  uint64_t seed = 42;
  bool keep_ids = false;        // fill Sample::prompt_ids (the harness feeds ids to built-in models)
  std::string templates;        // replacement template file ("" = the built-in data file)
  std::string qa_data;          // RULER qa tasks: folder or file with SQuAD v2 / HotpotQA dev JSON
  std::string haystack_dir;     // "" = Corpus::default_dir()
};

// What a command asks the generators for: a suite, its tasks ("all" or a comma-separated list) and the inputs
// they read ("" = the defaults: the lctx-8k tokenizer, data/sotu, the built-in templates, no QA data).
struct TaskInputs {
  std::string suite = "ruler", tasks = "all", tokenizer, haystack, templates, qa_data;
};

// Everything a generator reads, loaded once and shared (thread-safe, immutable).
struct Resources {
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<const Corpus> corpus;       // may be null until a generator needs it (see load_resources)
  std::shared_ptr<const WordLists> words;
};
// tokenizer_path "" = default_tokenizer_path(); haystack_dir "" = Corpus::default_dir().
Resources load_resources(const std::string& tokenizer_path, const std::string& haystack_dir);

class TaskGenerator {
 public:
  virtual ~TaskGenerator() = default;
  virtual std::string suite() const = 0;
  virtual std::string name() const = 0;
  // Smallest target length this task can produce (throwing Error for smaller ones is also required).
  virtual int64_t min_length() const = 0;
  // Whether `depth` is meaningful (NIAH-style tasks and BABILong facts); others ignore it.
  virtual bool supports_depth() const { return false; }
  // Pure function of (length, index, options.seed, depth): same arguments, same bytes. Thread-safe.
  virtual Sample generate(int64_t length, int64_t index, std::optional<double> depth = std::nullopt) const = 0;
  // The suite-native JSONL record of a sample (RULER fields or BABILong fields, plus "lctx" metadata).
  virtual nlohmann::json record(const Sample& s) const = 0;
};

// Registry over both suites. Throws Error("unknown task 'x' for suite ruler (known: ...)").
std::vector<std::string> task_names(const std::string& suite);  // in canonical order
std::vector<std::string> expand_tasks(const std::string& suite, const std::string& list);  // "all" or CSV
std::unique_ptr<TaskGenerator> make_generator(const std::string& suite, const std::string& task,
                                              const Resources& res, const GenOptions& opts);

// Implemented by tasks/ruler and tasks/babilong; the registry dispatches to them.
std::vector<std::string> ruler_task_names();
std::unique_ptr<TaskGenerator> make_ruler_generator(const std::string& task, const Resources& res,
                                                    const GenOptions& opts);
std::vector<std::string> babilong_task_names();
std::unique_ptr<TaskGenerator> make_babilong_generator(const std::string& task, const Resources& res,
                                                       const GenOptions& opts);

}  // namespace lctx
