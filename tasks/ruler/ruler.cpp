// RULER suite: generator families, templates, the shared sample/record logic, and the registry entry points.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "tasks/retarget.hpp"
#include "tasks/ruler/ruler.hpp"
#include "core/error.hpp"
#include "core/lengths.hpp"
#include "core/hash.hpp"
#include "core/rng.hpp"
#include "core/paths.hpp"
#include "core/files.hpp"

namespace lctx {

namespace {

// A template field a generator reads: the placeholders it may hold and those it must hold (a needle without
// {key}/{value} would make samples whose answer is not in the prompt; an unknown placeholder would be left
// literally in every prompt).
struct Field {
  const char* name;
  std::vector<std::string> allowed, required;
};

// Generator families of the catalogue (tasks/ruler/catalog.cpp): the factory and the template fields it reads.
struct Family {
  const char* name;
  std::unique_ptr<TaskGenerator> (*make)(std::shared_ptr<const ruler::Ctx>, const TaskInfo&);
  std::vector<Field> fields;
};

const std::vector<Family>& families() {
  static const std::vector<std::string> niah_q = {"type_needle_v", "query"};
  static const std::vector<Family> f = {
      {"niah", ruler::make_niah,
       {{"needle", {"type_needle_v", "key", "value"}, {"key", "value"}},
        {"instruction_single", niah_q, {}},
        {"question_single", niah_q, {"query"}},
        {"answer_prefix_single", niah_q, {}},
        {"instruction_multi", niah_q, {}},
        {"question_multi", niah_q, {"query"}},
        {"answer_prefix_multi", niah_q, {}}}},
      {"niah_ids", ruler::make_niah_ids, {}},  // its wording is its own, not in the templates file
      {"variable_tracking", ruler::make_vt,
       {{"instruction", {}, {}},
        {"question", {"query", "num_v"}, {"query"}},
        {"answer_prefix", {"query", "num_v"}, {}},
        {"example_separator", {}, {}}}},
      {"common_words", ruler::make_cwe,
       {{"instruction", {"num_cw"}, {}},
        {"question", {"num_cw"}, {}},
        {"answer_prefix", {"num_cw"}, {}},
        {"example_separator", {}, {}}}},
      {"frequent_words", ruler::make_fwe,
       {{"instruction", {}, {}}, {"question", {"noise_word"}, {}}, {"answer_prefix", {}, {}}, {"noise_word", {}, {}}}},
      {"qa", ruler::make_qa,
       {{"instruction", {}, {}},
        {"question", {"query"}, {"query"}},
        {"answer_prefix", {}, {}},
        {"document", {"i", "document"}, {"document"}},
        {"document_separator", {}, {}}}},
  };
  return f;
}

const Family& family(const TaskInfo& t) {
  for (const Family& f : families())
    if (t.family == f.name) return f;
  throw Error("ruler catalogue: task " + t.name + " names the unknown generator family '" + t.family + "'");
}

}  // namespace

std::vector<std::string> ruler_task_names() { return ruler_catalog().names(); }

std::unique_ptr<TaskGenerator> make_ruler_generator(const std::string& task, const Resources& res,
                                                    const GenOptions& opts) {
  const TaskInfo& info = ruler_catalog().at(task);
  if (!res.tokenizer) throw Error("ruler: no tokenizer loaded");
  if (!res.words) throw Error("ruler: no word lists loaded");
  if (!res.corpus && info.params.value("haystack", std::string()) == "essay")
    throw Error("ruler " + task + ": no haystack corpus loaded");
  auto ctx = std::make_shared<ruler::Ctx>();
  ctx->res = res;
  ctx->opts = opts;
  ctx->tpl = ruler::Templates::load(opts.templates);
  return family(info).make(ctx, info);
}

}  // namespace lctx

namespace lctx::ruler {

std::shared_ptr<const Templates> Templates::load(const std::string& file) {
  const std::string path = file.empty() ? asset("tasks/templates/ruler.json") : file;
  return parse(read_file(path), path);
}

namespace {
// Placeholders ("{name}", name = [A-Za-z_][A-Za-z0-9_]*) in s, in order of appearance.
std::vector<std::string> placeholders(const std::string& s) {
  std::vector<std::string> out;
  for (size_t p = s.find('{'); p != std::string::npos; p = s.find('{', p + 1)) {
    size_t q = p + 1;
    if (q >= s.size() || !(std::isalpha(static_cast<unsigned char>(s[q])) || s[q] == '_')) continue;
    while (q < s.size() && (std::isalnum(static_cast<unsigned char>(s[q])) || s[q] == '_')) ++q;
    if (q < s.size() && s[q] == '}') out.push_back(s.substr(p + 1, q - p - 1));
  }
  return out;
}
}  // namespace

std::shared_ptr<const Templates> Templates::parse(const std::string& body, const std::string& path) {
  auto t = std::make_shared<Templates>();
  t->j = nlohmann::json::parse(body, nullptr, false);
  if (t->j.is_discarded()) throw Error("templates " + path + ": not valid JSON");
  if (!t->j.is_object()) throw Error("templates " + path + ": expected a JSON object");
  if (t->j.contains("id") && !t->j["id"].is_string()) throw Error("templates " + path + ": 'id' must be a string");
  t->id = t->j.value("id", std::string("custom-") + hex64(fnv1a64(body)).substr(0, 8));
  // Every field the generators read, with its placeholders checked, so a bad file fails before any sample is
  // written.
  for (const TaskInfo& task : ruler_catalog().tasks) {
    const std::string section = task.params.at("template").get<std::string>();
    for (const Field& f : family(task).fields) {
      const auto found = placeholders(t->str(section, f.name));
      for (auto& ph : found)
        if (std::find(f.allowed.begin(), f.allowed.end(), ph) == f.allowed.end()) {
          std::string list;
          for (auto& a : f.allowed) list += (list.empty() ? "{" : ", {") + a + "}";
          throw Error("templates " + path + ": '" + section + "." + f.name + "' has the unknown placeholder {" +
                      ph.substr(0, 40) + "} (" + (list.empty() ? "it takes none" : "it takes " + list) + ")");
        }
      for (auto& r : f.required)
        if (std::find(found.begin(), found.end(), r) == found.end())
          throw Error("templates " + path + ": '" + section + "." + f.name + "' lacks the placeholder {" + r + "}");
    }
  }
  if (t->noise_sentences().empty()) throw Error("templates " + path + ": 'noise' must list filler sentences");
  for (auto& n : t->noise_sentences())
    if (!placeholders(n).empty()) throw Error("templates " + path + ": 'noise' sentences take no placeholders");
  return t;
}

std::string Templates::str(const std::string& task, const std::string& field) const {
  auto it = j.find(task);
  if (it == j.end() || !it->is_object()) throw Error("templates " + id + ": missing section '" + task + "'");
  auto f = it->find(field);
  if (f == it->end() || !f->is_string()) throw Error("templates " + id + ": missing string '" + task + "." + field + "'");
  return f->get<std::string>();
}

std::vector<std::string> Templates::noise_sentences() const {
  std::vector<std::string> v;
  auto it = j.find("noise");
  if (it != j.end() && it->is_array())
    for (auto& s : *it)
      if (s.is_string() && !s.get<std::string>().empty()) v.push_back(s.get<std::string>());
  return v;
}

std::string fill(std::string s, const std::vector<std::pair<std::string, std::string>>& kv) {
  for (auto& [k, v] : kv) {
    const std::string key = "{" + k + "}";
    for (size_t p = s.find(key); p != std::string::npos; p = s.find(key, p + v.size())) s.replace(p, key.size(), v);
  }
  return s;
}

const std::vector<int>& depth_grid() {
  static const std::vector<int> g = [] {
    std::vector<int> v;
    for (int i = 0; i < 40; ++i) v.push_back(static_cast<int>(std::nearbyint(100.0 * i / 39.0)));
    return v;
  }();
  return g;
}

std::string random_word_key(Rng& rng, const WordLists& w) { return rng.choice(w.adjectives) + "-" + rng.choice(w.nouns); }
std::string random_number7(Rng& rng) { return std::to_string(rng.range(1000000, 9999999)); }
std::string random_value(Rng& rng, const WordLists& w, const std::string& type) {
  if (type == "numbers") return random_number7(rng);
  if (type == "uuids") return rng.uuid4();
  return random_word_key(rng, w);
}

void finish_built(Built& b, PromptBuilder& pb, size_t input_end, bool keep_ids) {
  pb.finish();
  b.prompt_tokens = pb.tokens();
  b.input = std::move(pb.text());
  b.answer_prefix = b.input.substr(input_end);
  b.input.resize(input_end);  // capacity kept: a shrink would copy the whole prompt
  if (keep_ids) b.ids = std::move(pb.ids());
  b.one_call_tokens = pb.one_call_tokens();
  b.one_call_marks.clear();
  b.one_call_curve = pb.one_call_curve();
  b.one_call_stopped = pb.one_call_stopped();
  if (b.one_call_tokens >= 0)
    for (size_t m = 0; m < pb.num_marks(); ++m) b.one_call_marks.emplace_back(pb.mark_char(m), pb.mark_one_call_token(m));
}

void finish_marked(Built& b, PromptBuilder& pb, size_t mark, const std::string& ap, int64_t n, bool keep_ids) {
  const size_t input_end = static_cast<size_t>(pb.bytes());
  pb.lit(ap);
  finish_built(b, pb, input_end, keep_ids);
  b.answer_token = pb.mark_token(mark);
  b.answer_char = pb.mark_char(mark);
  b.needle_tokens.push_back(b.answer_token);
  b.needle_chars.push_back(pb.mark_char(mark));
  b.extra["haystack_units"] = n;
}

static std::string depth_key(std::optional<double> d) {
  if (!d) return {};
  char buf[32];
  std::snprintf(buf, sizeof buf, "depth=%.4f", *d);
  return buf;
}

// From 1M on, the one-call count of a prompt fitted with per-chunk counts is tens to hundreds of tokens over
// them (the drift), so a first build at the budget is always rejected. At 1M, tasks whose prompts cannot be
// cut (Built::trim) start instead where calibration prompts (this task and length, fixed seeds of their own,
// not samples) say the drift leaves the count: in the middle of the window on average. The same on every thread and in every run, so samples stay functions of their own seeds.
int64_t RulerTask::first_target(int64_t length, int64_t budget) const {
  // Below 1M the first build lands. From 2M on calibration prompts cost more than the rebuilds they save (cwe's
  // lists there outgrow the word pool: each calibration prompt brings hundreds of thousands of new pair words).
  if (length < (int64_t(1) << 20) || length >= (int64_t(2) << 20) || cuts_haystack() || ctx_->opts.keep_ids ||
      !ctx_->res.tokenizer->one_call_simulated())
    return budget;
  std::lock_guard<std::mutex> lk(calib_mu_);
  auto it = calib_.find(length);
  if (it != calib_.end()) return it->second;
  // Three calibration prompts: their mean drift, and the mean gap the fit leaves under its target (coarse
  // units: cwe's list words), so that the first count lands, on average, in the middle of the window.
  int64_t t = budget, drift = 0, gap = 0;
  constexpr int kCalib = 3;
  int made = 0;
  for (int k = 0; k < kCalib; ++k) {
    Rng rng(sample_seed("ruler", name_, length, -1 - k, ctx_->opts.seed, "calibration"));
    try {
      Built c = build(budget, rng, std::nullopt, -1 - k);
      give_text_buffer(std::move(c.input));
      if (c.trim || c.one_call_tokens < 0 || c.one_call_stopped) break;
      drift += c.one_call_tokens - c.prompt_tokens;
      gap += budget - c.prompt_tokens;
      ++made;
    } catch (const TooShort&) {
      break;
    }
  }
  if (made == kCalib && std::abs(drift / kCalib) <= budget / 64) t = budget - slack_ / 2 - (drift - gap) / kCalib;
  calib_.emplace(length, t);
  return t;
}

Sample RulerTask::generate(int64_t length, int64_t index, std::optional<double> depth) const {
  if (depth && (!(*depth >= 0) || *depth > 100)) throw Error("depth must be in [0, 100], got " + std::to_string(*depth));
  const std::string where = "ruler/" + name_ + " at " + format_length(length);
  if (length < min_len_)
    throw Error("impossible length " + format_length(length) + " for ruler/" + name_ + " (minimum " +
                format_length(min_len_) + ")");
  if (!supports_depth()) depth.reset();
  Sample s;
  s.suite = "ruler";
  s.task = name_;
  s.length = length;
  s.index = index;
  s.seed = ctx_->opts.seed;
  s.depth = depth;
  const uint64_t ss = sample_seed("ruler", name_, length, index, ctx_->opts.seed, depth_key(depth));
  const int64_t budget = length - ttg_;
  const int64_t slack = slack_;
  const Tokenizer& tok = *ctx_->res.tokenizer;
  // The builders fit the haystack with per-chunk token counts (cheap, and exact up to SentencePiece's float
  // drift); the recorded count is the one-call count of the whole prompt (Tokenizer::count_one_call). When the
  // two differ by more than the slack allows (tens of tokens at 1M, thousands at 8M), the builder's budget is
  // moved by the difference and the sample is rebuilt from the same seed.
  Retarget search(budget, slack);
  search.start_at(first_target(length, budget));
  Built b;
  int64_t exact = 0;
  std::vector<int64_t> offsets, tokens_at;
  std::vector<int32_t> ids;
  bool trims = true;
  for (int attempt = 0;; ++attempt) {
    Rng rng(ss);
    if (attempt > 0) give_text_buffer(std::move(b.input));
    // A count far over the budget (32M: the first build's is 40% over) is not needed exactly: the builder's
    // one-call count stops a little past where the next target's search needs its drift curve.
    PromptBuilder::one_call_limit(budget + 4 * (slack + budget / 1024) + 65536);
    // A prompt whose one-call count lands outside the window is rejected, whatever its text: a build may stop
    // at the count (Built::count_only). Not for prompts that can be cut (their text is cut instead), nor once
    // the search falls back (it then accepts any count), nor when counts are verified against the text.
    static const bool verify = std::getenv("LCTX_VERIFY_ONE_CALL") != nullptr;
    struct WindowReset {  // whatever build() does, the window is this build's only
      ~WindowReset() { set_accept_window(1, 0); }
    } window_reset;
    if (!cuts_haystack() && !search.fell_back() && !verify && !ctx_->opts.keep_ids) set_accept_window(budget - slack, budget);
    try {
      b = build(search.target(), rng, depth, index);
    } catch (const TooShort&) {
      PromptBuilder::one_call_limit(INT64_MAX);
      throw Error("impossible length " + format_length(length) + " for ruler/" + name_ +
                  ": the fixed part of the prompt does not fit (minimum about " + format_length(min_len_) + ")");
    }
    PromptBuilder::one_call_limit(INT64_MAX);
    set_accept_window(1, 0);
    if (b.count_only) {
      exact = b.one_call_tokens;
      static const bool debug = std::getenv("LCTX_DEBUG_COUNT") != nullptr;
      if (debug)
        std::fprintf(stderr, "lctx: %s #%lld attempt %d: target %lld, per-chunk %lld, one call %lld, budget %lld (count only)\n",
                     where.c_str(), static_cast<long long>(index), attempt, static_cast<long long>(search.target()),
                     static_cast<long long>(b.prompt_tokens), static_cast<long long>(exact), static_cast<long long>(budget));
      search.set_over(0);
      if (exact >= budget - slack && exact <= budget)
        throw Error("internal: " + where + ": a count-only build inside the window");
      if (search.accept(exact, b.prompt_tokens, &b.one_call_curve, b.one_call_stopped))
        throw Error("internal: " + where + ": a count-only build accepted");
      if (search.exhausted() && search.fall_back()) continue;
      if (search.exhausted())
        throw Error("internal: " + where + " prompt has " + std::to_string(exact) + " tokens (one call), budget " +
                    std::to_string(budget) + ", slack " + std::to_string(slack) + ", after " +
                    std::to_string(search.attempts()) + " attempts");
      continue;
    }
    offsets = b.needle_chars;
    if (b.answer_char >= 0) offsets.push_back(b.answer_char);
    // The builder composed the one-call count and the marks' tokens while writing the prompt (PromptBuilder,
    // OneCallCounter); otherwise (ids kept, tokenizers whose call is not replayed) the prompt is counted here.
    bool composed = b.one_call_tokens >= 0 && !ctx_->opts.keep_ids;
    if (composed && b.one_call_stopped) {
      exact = b.one_call_tokens;  // over the limit, so over the budget
    } else if (composed) {
      tokens_at.assign(offsets.size(), -1);
      for (size_t i = 0; i < offsets.size(); ++i)
        for (auto& [off, tk] : b.one_call_marks)
          if (off == offsets[i]) {
            tokens_at[i] = tk;
            break;
          }
      composed = std::find(tokens_at.begin(), tokens_at.end(), -1) == tokens_at.end();
      exact = b.one_call_tokens;
      // Over the budget by less than the generator can cut off its haystack's end: cut, no rebuild (the
      // marks lie before the cut, so their tokens stay).
      if (composed && exact > budget && b.trim && trims) {
        const int64_t cut = b.trim(b, budget - slack, budget);
        if (cut >= 0) exact = cut;
        else if (cut == -2) trims = false;  // no cut lands: aim inside the window from here on
      }
    }
    if (!composed || (verify && !b.one_call_stopped)) {
      std::vector<int64_t> sorted = offsets;
      std::sort(sorted.begin(), sorted.end());
      std::string full;
      full.reserve(b.input.size() + b.answer_prefix.size());
      full += b.input;
      full += b.answer_prefix;
      std::vector<int64_t> sorted_at;
      const int64_t counted = tok.count_one_call(full, ctx_->opts.keep_ids ? &ids : nullptr, &sorted, &sorted_at);
      // sorted_at follows `sorted`; map back to the order of `offsets`.
      std::vector<int64_t> at(offsets.size());
      for (size_t i = 0; i < offsets.size(); ++i)
        at[i] = sorted_at[static_cast<size_t>(std::lower_bound(sorted.begin(), sorted.end(), offsets[i]) - sorted.begin())];
      if (composed && (counted != exact || at != tokens_at))
        throw Error("internal: " + where + ": composed one-call count " + std::to_string(exact) + " != " +
                    std::to_string(counted) + " (or marks differ)");
      exact = counted;
      tokens_at = std::move(at);
    }
    static const bool debug = std::getenv("LCTX_DEBUG_COUNT") != nullptr;
    if (debug)
      std::fprintf(stderr, "lctx: %s #%lld attempt %d: target %lld, per-chunk %lld, one call %lld, budget %lld\n",
                   where.c_str(), static_cast<long long>(index), attempt, static_cast<long long>(search.target()),
                   static_cast<long long>(b.prompt_tokens), static_cast<long long>(exact), static_cast<long long>(budget));
    // With a prompt that can be cut, a rebuild aims a little over the budget, then cuts.
    // (A stopped count has no cut states; the next build of an essay task will.)
    const bool cuttable = trims && (b.trim || (b.one_call_stopped && cuts_haystack()));
    search.set_over(cuttable ? slack + budget / 1024 : 0);
    if (search.accept(exact, b.prompt_tokens, &b.one_call_curve, b.one_call_stopped)) break;
    if (search.exhausted() && search.fall_back()) continue;
    if (search.exhausted())
      throw Error("internal: " + where + " prompt has " + std::to_string(exact) + " tokens (one call), budget " +
                  std::to_string(budget) + ", slack " + std::to_string(slack) + ", after " +
                  std::to_string(search.attempts()) + " attempts");
  }
  for (size_t i = 0; i < b.needle_chars.size(); ++i) b.needle_tokens[i] = tokens_at[i];
  if (b.answer_char >= 0) b.answer_token = tokens_at.back();
  if (ctx_->opts.keep_ids) b.ids = std::move(ids);
  b.prompt_tokens = exact;
  const bool verified = true;
  s.input = std::move(b.input);
  s.answer_prefix = std::move(b.answer_prefix);
  s.outputs = std::move(b.outputs);
  s.prompt_tokens = b.prompt_tokens;
  if (ctx_->opts.keep_ids) s.prompt_ids = std::move(b.ids);
  s.tokens_to_generate = ttg_;
  s.metric = metric_;
  auto& m = s.meta;
  m["depths"] = b.depths;
  m["needle_token_positions"] = b.needle_tokens;
  m["needle_char_offsets"] = b.needle_chars;
  m["answer_token_position"] = b.answer_token;
  m["seed"] = ctx_->opts.seed;
  m["sample_seed"] = hex64(ss);
  m["tokenizer"] = ctx_->res.tokenizer->hash();
  m["haystack"] = b.haystack;
  if (b.haystack == "essay" && ctx_->res.corpus) m["corpus"] = ctx_->res.corpus->hash();
  m["template"] = ctx_->tpl->id;
  m["budget"] = budget;
  m["slack"] = slack_;
  m["count_verified"] = verified;  // the count is that of one encode call of the whole prompt
  if (search.fell_back()) m["below_slack"] = budget - slack - exact;  // tokens short of budget - slack
  m["count_method"] = tok.one_call_simulated() ? "one-call-replayed" : "one-call";
  if (depth) m["requested_depth"] = *depth;
  for (auto& [k, v] : b.extra.items()) m[k] = v;
  return s;
}

nlohmann::json RulerTask::record(const Sample& s) const {
  nlohmann::json r;
  r["index"] = s.index;
  r["input"] = s.input;
  r["outputs"] = s.outputs;
  r["length"] = s.prompt_tokens + s.tokens_to_generate;
  r["length_w_model_temp"] = s.prompt_tokens + s.tokens_to_generate;  // no chat template is applied
  r["answer_prefix"] = s.answer_prefix;
  r["token_position_answer"] = s.meta.value("answer_token_position", int64_t(-1));
  nlohmann::json m = s.meta;
  m["suite"] = s.suite;
  m["task"] = s.task;
  m["target_length"] = s.length;
  m["prompt_tokens"] = s.prompt_tokens;
  m["tokens_to_generate"] = s.tokens_to_generate;
  m["metric"] = s.metric;
  r["lctx"] = std::move(m);
  return r;
}

}  // namespace lctx::ruler
