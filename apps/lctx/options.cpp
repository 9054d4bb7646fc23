#include "apps/lctx/options.hpp"

#include "core/error.hpp"
#include "core/lengths.hpp"

namespace lctx::cli {

CLI::Option* add_lengths(CLI::App& app, std::vector<int64_t>& out, const std::string& help) {
  return app.add_option_function<std::string>(
      "--lengths", [&out](const std::string& s) { out = parse_lengths(s); }, help);
}

CLI::Option* add_depths(CLI::App& app, std::vector<double>& out, const std::string& help) {
  return app.add_option_function<std::string>(
      "--depths", [&out](const std::string& s) { out = parse_depths(s); }, help);
}

CLI::Option* add_seed(CLI::App& app, uint64_t& out, const std::string& help) {
  return app.add_option_function<std::string>(
      "--seed",
      [&out](const std::string& s) {
        size_t pos = 0;
        bool ok = !s.empty() && s[0] != '-';
        try {
          if (ok) out = std::stoull(s, &pos);
        } catch (const std::exception&) {
          ok = false;
        }
        if (!ok || pos != s.size()) throw Error("bad --seed '" + s + "': expected a non-negative integer");
      },
      help + " (default " + std::to_string(out) + ")");
}

CLI::Option* add_tokenizer(CLI::App& app, std::string& out) {
  return app.add_option("--tokenizer", out, "SentencePiece .model (default: assets/tokenizer/lctx-8k.model)");
}

CLI::Option* add_suite(CLI::App& app, std::string& out) {
  return app.add_option("--suite", out, "ruler | babilong")->capture_default_str();
}

CLI::Option* add_haystack(CLI::App& app, std::string& out) {
  return app.add_option("--haystack", out, "folder of .txt files for essay haystacks (default: data/sotu)");
}

void add_task_inputs(CLI::App& app, TaskInputs& in) {
  add_suite(app, in.suite);
  app.add_option("--tasks", in.tasks, "all | comma-separated task names")->capture_default_str();
  add_tokenizer(app, in.tokenizer);
  add_haystack(app, in.haystack);
  app.add_option("--templates", in.templates, "prompt template JSON file replacing the built-in one");
  app.add_option("--qa-data", in.qa_data,
                 "SQuAD v2.0 dev / HotpotQA dev distractor JSON (file or folder) for the RULER qa tasks");
}

}  // namespace lctx::cli
