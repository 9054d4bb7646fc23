#include "apps/lctx/options.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

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
        bool ok = !s.empty() && s[0] != '-' && s[0] != '+';
        uint64_t v = 0;
        try {
          if (ok) v = std::stoull(s, &pos);
        } catch (const std::exception&) {
          ok = false;
        }
        if (!ok || pos != s.size())
          throw Error("bad --seed '" + s.substr(0, 40) + "': expected an integer in [0, 2^63)");
        if (v >> 63)
          throw Error("bad --seed '" + s + "': it has bit 63 set, a range reserved for training samples (seeds are "
                      "integers in [0, 2^63))");
        out = v;
      },
      help + " (default " + std::to_string(out) + ")")
      ->type_name("UINT");
}

namespace {

std::string shortest(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.10g", v);
  return b;
}

// Parses a whole integer; false on anything else (fraction, exponent, trailing text, overflow).
bool parse_int(const std::string& s, int64_t& v) {
  if (s.empty() || s.size() > 40) return false;
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(s.c_str(), &end, 10);
  if (errno == ERANGE || end == s.c_str() || *end != '\0') return false;
  v = x;
  return true;
}

template <class T>
CLI::Option* add_int_impl(CLI::App& app, const std::string& name, T& out, int64_t lo, int64_t hi,
                          const std::string& help) {
  return app
      .add_option_function<std::string>(
          name,
          [&out, name, lo, hi](const std::string& s) {
            int64_t v = 0;
            if (!parse_int(s, v) || v < lo || v > hi)
              throw Error(name + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                          "], got '" + s.substr(0, 40) + "'");
            out = static_cast<T>(v);
          },
          help)
      ->type_name("INT")
      ->default_str(std::to_string(out));
}

}  // namespace

CLI::Option* add_int(CLI::App& app, const std::string& name, int64_t& out, int64_t lo, int64_t hi,
                     const std::string& help) {
  return add_int_impl(app, name, out, lo, hi, help);
}

CLI::Option* add_int(CLI::App& app, const std::string& name, int& out, int lo, int hi, const std::string& help) {
  return add_int_impl(app, name, out, lo, hi, help);
}

CLI::Option* add_number(CLI::App& app, const std::string& name, double& out, double lo, double hi,
                        const std::string& help) {
  return app
      .add_option_function<std::string>(
          name,
          [&out, name, lo, hi](const std::string& s) {
            char* end = nullptr;
            double v = s.empty() || s.size() > 40 ? NAN : std::strtod(s.c_str(), &end);
            if (!end || *end != '\0' || !std::isfinite(v) || v < lo || v > hi)
              throw Error(name + " must be a finite number in [" + shortest(lo) + ", " + shortest(hi) + "], got '" +
                          s.substr(0, 40) + "'");
            out = v;
          },
          help)
      ->type_name("FLOAT")
      ->default_str(shortest(out));
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
