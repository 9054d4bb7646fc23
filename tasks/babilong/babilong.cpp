// BABILong generator: see babilong.hpp and docs/babilong.md.
#include "tasks/babilong/babilong.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "tasks/babi/babi.hpp"
#include "tasks/retarget.hpp"
#include "core/error.hpp"
#include "core/lengths.hpp"
#include "core/hash.hpp"
#include "core/rng.hpp"
#include "core/paths.hpp"
#include "core/files.hpp"
#include "core/strings.hpp"
#include "tasks/catalog.hpp"
#include "tasks/sample.hpp"

namespace lctx {

namespace babilong {

std::string default_templates_path() { return asset("tasks/templates/babilong.json"); }

nlohmann::json load_templates(const std::string& path) { return parse_templates(read_file(path), path); }

nlohmann::json parse_templates(const std::string& body, const std::string& path) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) throw Error("babilong templates " + path + ": invalid JSON");
  if (!j.is_object() || !j.contains("tasks") || !j["tasks"].is_object())
    throw Error("babilong templates " + path + ": expected an object with a \"tasks\" object");
  if (j.contains("id") && !j["id"].is_string()) throw Error("babilong templates " + path + ": 'id' must be a string");
  for (auto& t : babilong_catalog().names()) {
    if (!j["tasks"].contains(t) || !j["tasks"][t].is_object())
      throw Error("babilong templates " + path + ": no entry for " + t);
    for (const char* k : {"instruction", "examples", "post_prompt"}) {
      if (!j["tasks"][t].contains(k) || !j["tasks"][t][k].is_string())
        throw Error("babilong templates " + path + ": " + t + " lacks the string \"" + k + "\"");
      // The texts are used as they are: a "{name}" would reach every prompt literally.
      const std::string s = j["tasks"][t][k].get<std::string>();
      for (size_t p = s.find('{'); p != std::string::npos; p = s.find('{', p + 1)) {
        size_t q = p + 1;
        while (q < s.size() && (std::isalnum(static_cast<unsigned char>(s[q])) || s[q] == '_')) ++q;
        if (q > p + 1 && q < s.size() && s[q] == '}')
          throw Error("babilong templates " + path + ": " + t + "." + k + " has the placeholder " +
                      s.substr(p, std::min<size_t>(q - p + 1, 42)) + ", but BABILong templates take none");
      }
    }
  }
  return j;
}

}  // namespace babilong

namespace {

using babilong::kSlack;

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> w;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) w.push_back(s.substr(i, j - i));
    i = j;
  }
  return w;
}

// A background piece: corpus words [a, b) (within one sentence).
struct Piece {
  size_t a, b;
};

// One item of the context: a fact (index into facts) or a background piece.
struct Item {
  bool fact;
  size_t i;
};

class BabilongGenerator : public TaskGenerator {
 public:
  BabilongGenerator(std::string task, Resources res, GenOptions opts)
      : task_(std::move(task)), res_(std::move(res)), opts_(std::move(opts)),
        ttg_(babilong_catalog().at(task_).tokens_to_generate) {
    if (!res_.tokenizer) throw Error("babilong: no tokenizer loaded");
    std::string path = opts_.templates.empty() ? babilong::default_templates_path() : opts_.templates;
    auto j = babilong::load_templates(path);
    auto& t = j["tasks"][task_];
    template_id_ = j.value("id", std::string("custom"));
    // TASK_TEMPLATE + "\n\n" + USER_TEMPLATE, split around the context and the question; the outer strip() of
    // BABILong's get_formatted_input applies to the head's start and the question's end.
    head_ = t["instruction"].get<std::string>() + "\n\n" + t["examples"].get<std::string>() + "\n\n" +
            t["post_prompt"].get<std::string>() + "\n\n<context>\n";
    size_t a = 0;
    while (a < head_.size() && std::isspace(static_cast<unsigned char>(head_[a]))) ++a;
    head_ = head_.substr(a);
  }

  std::string suite() const override { return "babilong"; }
  std::string name() const override { return task_; }
  int64_t min_length() const override { return babilong_catalog().at(task_).min_length; }
  bool supports_depth() const override { return babilong_catalog().at(task_).depth; }

  Sample generate(int64_t length, int64_t index, std::optional<double> depth) const override;
  // One build whose context is fitted to length - tokens_to_generate - shift (per-chunk counts); fact_chars gets
  // the byte offset of each fact in the prompt.
  Sample build(int64_t length, int64_t index, std::optional<double> depth, int64_t shift,
               std::vector<int64_t>& fact_chars) const;
  nlohmann::json record(const Sample& s) const override {
    nlohmann::json r;
    r["index"] = s.index;
    r["length"] = s.length;
    r["input"] = s.input;
    r["question"] = s.question;
    r["target"] = s.target;
    r["lctx"] = s.meta;
    return r;
  }

 private:
  std::string tail(const std::string& question) const {
    return trim("\n</context>\n\nQuestion: " + question).insert(0, "\n");
  }
  const Corpus& corpus() const {
    if (!res_.corpus) throw Error("babilong: no haystack corpus loaded");
    return *res_.corpus;
  }

  std::string task_;
  Resources res_;
  GenOptions opts_;
  std::string head_, template_id_;
  int ttg_;
};

std::string fmt_depth(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", d);
  return buf;
}


// The recorded count is the one-call count of the whole prompt (Tokenizer::count_one_call); when it and the
// per-chunk count that fitted the context differ by more than the slack allows (SentencePiece's float drift
// on long texts), the context is refitted to a budget moved by the difference, from the same seed.
Sample BabilongGenerator::generate(int64_t length, int64_t index, std::optional<double> depth) const {
  const Tokenizer& tok = *res_.tokenizer;
  const int64_t budget = length > 0 ? length - ttg_ : 0;
  Retarget search(budget, kSlack);
  for (;;) {
    std::vector<int64_t> fact_chars;
    Sample s = build(length, index, depth, budget - search.target(), fact_chars);
    std::vector<int64_t> sorted = fact_chars, at;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int32_t> ids;
    const int64_t exact = tok.count_one_call(s.prompt, opts_.keep_ids ? &ids : nullptr, &sorted, &at);
    if (length > 0 && !search.accept(exact)) {
      if (search.exhausted() && search.fall_back()) continue;
      if (search.exhausted())
        throw Error("internal: babilong/" + task_ + " at " + format_length(length) + " prompt has " +
                    std::to_string(exact) + " tokens (one call), budget " + std::to_string(budget) + ", after " +
                    std::to_string(search.attempts()) + " attempts");
      continue;
    }
    std::vector<int64_t> pos(fact_chars.size());
    for (size_t f = 0; f < fact_chars.size(); ++f)
      pos[f] = at[static_cast<size_t>(std::lower_bound(sorted.begin(), sorted.end(), fact_chars[f]) - sorted.begin())];
    s.prompt_tokens = exact;
    if (opts_.keep_ids) s.prompt_ids = std::move(ids);
    auto& m = s.meta;
    m["fact_positions"] = pos;
    std::vector<int64_t> spos;
    for (auto& f : m["support"]) spos.push_back(pos[f.get<size_t>()]);
    m["support_positions"] = spos;
    m["prompt_tokens"] = exact;
    if (search.fell_back()) m["below_slack"] = budget - kSlack - exact;  // tokens short of budget - slack
    m["count_method"] = tok.one_call_simulated() ? "one-call-replayed" : "one-call";
    return s;
  }
}

Sample BabilongGenerator::build(int64_t length, int64_t index, std::optional<double> depth, int64_t shift,
                                std::vector<int64_t>& fact_chars) const {
  if (length < 0) throw Error("babilong: negative length");
  if (depth && (!(*depth >= 0) || *depth > 100)) throw Error("babilong: depth must be within 0..100 percent");
  const Tokenizer& tok = *res_.tokenizer;
  uint64_t seed = sample_seed("babilong", task_, length, index, opts_.seed, depth ? "depth=" + fmt_depth(*depth) : "");
  Rng rng(seed);
  const int64_t budget = length > 0 ? length - ttg_ - shift : 0;
  const int64_t max_rows = length > 0 ? length / 8 : 0;  // BABILong's max_n_facts (the question counts as a row)

  // 1. A story and one of its questions that fit the length.
  babi::Instance inst;
  uint64_t story_seed = 0;
  int64_t facts_only_tokens = 0;
  int64_t smallest = -1;
  bool found = false;
  for (int attempt = 0; attempt < 200 && !found; ++attempt) {
    story_seed = rng.next();
    Rng sr(story_seed);
    auto insts = babi::instances(babi::generate_story(task_, sr));
    if (insts.empty()) continue;
    inst = insts[sr.below(insts.size())];
    std::string facts_text;
    for (auto& f : inst.facts) facts_text += (facts_text.empty() ? "" : " ") + f;
    facts_only_tokens = tok.count(trim(head_ + facts_text + tail(inst.question)));
    if (smallest < 0 || facts_only_tokens < smallest) smallest = facts_only_tokens;
    if (length == 0) found = true;
    else if (static_cast<int64_t>(inst.facts.size()) + 1 <= max_rows && facts_only_tokens <= budget) found = true;
  }
  if (!found)
    throw Error("babilong " + task_ + ": length " + format_length(length) +
                " is too short for the bAbI facts and the prompt (the smallest drawn needs " +
                std::to_string(smallest + ttg_) + " tokens)");

  // Facts as words with cached ids.
  const size_t nf = inst.facts.size();
  std::vector<std::vector<std::string>> fwords(nf);
  std::vector<std::vector<std::vector<int32_t>>> fids(nf);
  std::vector<int64_t> ftok(nf, 0);
  for (size_t f = 0; f < nf; ++f) {
    fwords[f] = split_words(inst.facts[f]);
    for (auto& w : fwords[f]) {
      fids[f].push_back(tok.encode(w));
      ftok[f] += static_cast<int64_t>(fids[f].back().size());
    }
  }

  // 2. Background pieces from a seed-chosen sentence on (cycling past the end).
  std::vector<Piece> pieces;
  uint64_t start_sentence = 0;
  if (length > 0) {
    const Corpus& c = corpus();
    int64_t need = budget - facts_only_tokens;
    start_sentence = rng.below(c.num_sentences());
    size_t s = start_sentence;
    int64_t have = 0;
    while (have < need) {
      int64_t t = c.sentence_tokens(s);
      if (have + t <= need) {
        pieces.push_back({c.sentence_begin(s), c.sentence_end(s)});
        have += t;
      } else {  // the last sentence is cut at a word boundary
        size_t a = c.sentence_begin(s), b = a;
        while (b < c.sentence_end(s) && have + c.word_tokens(b) <= need) have += c.word_tokens(b++);
        if (b > a) pieces.push_back({a, b});
        break;
      }
      if (++s == c.num_sentences()) s = 0;
    }
  }

  // 3. Fact placement: gap g precedes background piece g (gap G = pieces.size() is the end).
  std::vector<size_t> gap(nf, 0);
  {
    const size_t G = pieces.size();
    if (!depth) {
      for (auto& g : gap) g = rng.below(G + 1);  // with replacement, then sorted: BABILong's rule
      std::sort(gap.begin(), gap.end());
    } else {
      // The supporting facts (and any facts between them) share the gap at `depth` percent of the background
      // tokens; earlier facts go before it, later facts after it, each drawn as above.
      int64_t total = 0;
      for (auto& p : pieces) total += corpus().tokens(p.a, p.b);
      const double want = *depth / 100.0 * static_cast<double>(total);
      size_t g0 = 0;
      int64_t cum = 0;
      while (g0 < G && static_cast<double>(cum) < want) cum += corpus().tokens(pieces[g0].a, pieces[g0].b), ++g0;
      int first = inst.support.empty() ? 0 : inst.support.front();
      int last = inst.support.empty() ? static_cast<int>(nf) - 1 : inst.support.back();
      for (size_t f = 0; f < nf; ++f) {
        if (static_cast<int>(f) < first) gap[f] = rng.below(g0 + 1);
        else if (static_cast<int>(f) > last) gap[f] = g0 + rng.below(G - g0 + 1);
        else gap[f] = g0;
      }
      std::sort(gap.begin(), gap.begin() + first);
      std::sort(gap.begin() + last + 1, gap.end());
    }
  }

  // Exact prompt token count from cached ids: the prompt is cut at single spaces only (the tokenizer is
  // whitespace-separable), and the two context edges are encoded together with the template around them.
  auto items_of = [&]() {
    std::vector<Item> items;
    size_t f = 0;
    for (size_t p = 0; p <= pieces.size(); ++p) {
      while (f < nf && gap[f] == p) items.push_back({true, f++});
      if (p < pieces.size()) items.push_back({false, p});
    }
    return items;
  };
  auto first_word = [&](const Item& it) {
    return it.fact ? fwords[it.i].front() : std::string(corpus().word(pieces[it.i].a));
  };
  auto last_word = [&](const Item& it) {
    return it.fact ? fwords[it.i].back() : std::string(corpus().word(pieces[it.i].b - 1));
  };
  auto first_tok = [&](const Item& it) -> int64_t {
    return it.fact ? static_cast<int64_t>(fids[it.i].front().size()) : corpus().word_tokens(pieces[it.i].a);
  };
  auto last_tok = [&](const Item& it) -> int64_t {
    return it.fact ? static_cast<int64_t>(fids[it.i].back().size()) : corpus().word_tokens(pieces[it.i].b - 1);
  };
  auto item_tok = [&](const Item& it) -> int64_t { return it.fact ? ftok[it.i] : corpus().tokens(pieces[it.i].a, pieces[it.i].b); };
  const std::string tail_text = tail(inst.question);
  const bool separable = tok.whitespace_separable();

  std::vector<Item> items;
  std::vector<int32_t> head_ids, tail_ids;
  int64_t ctx_tokens = 0, prompt_tokens = 0;
  for (int iter = 0;; ++iter) {
    items = items_of();
    ctx_tokens = 0;
    for (auto& it : items) ctx_tokens += item_tok(it);
    head_ids = tok.encode(head_ + first_word(items.front()));
    tail_ids = tok.encode(last_word(items.back()) + tail_text);
    prompt_tokens = static_cast<int64_t>(head_ids.size()) + ctx_tokens - first_tok(items.front()) -
                    last_tok(items.back()) + static_cast<int64_t>(tail_ids.size());
    if (length == 0 || prompt_tokens <= budget || !separable) break;
    // Over budget by a few tokens (context edges re-encoded): drop words from the last background piece.
    if (pieces.empty() || iter > 10000)
      throw Error("babilong " + task_ + ": cannot fit length " + format_length(length));
    Piece& p = pieces.back();
    if (p.b - p.a > 1) {
      --p.b;
    } else {
      pieces.pop_back();
      for (auto& g : gap) g = std::min(g, pieces.size());
    }
  }

  // 4. Assemble the context and the prompt; record fact positions.
  Sample s;
  s.suite = "babilong";
  s.task = task_;
  s.length = length;
  s.index = index;
  s.seed = opts_.seed;
  s.depth = depth;
  {
    size_t bytes = 0;
    for (auto& it : items) bytes += (it.fact ? inst.facts[it.i].size() : corpus().text(pieces[it.i].a, pieces[it.i].b).size()) + 1;
    s.input.reserve(bytes);
  }
  std::vector<int64_t> fact_ctx_tok(nf, 0);
  fact_chars.assign(nf, 0);
  int64_t at = 0;
  for (auto& it : items) {
    if (!s.input.empty()) s.input += ' ';
    if (it.fact) {
      fact_ctx_tok[it.i] = at;
      fact_chars[it.i] = static_cast<int64_t>(head_.size() + s.input.size());
      s.input += inst.facts[it.i];
    } else {
      s.input.append(corpus().text(pieces[it.i].a, pieces[it.i].b));
    }
    at += item_tok(it);
  }
  s.question = inst.question;
  s.target = inst.answer;
  s.outputs = {inst.answer};
  s.prompt.reserve(head_.size() + s.input.size() + tail_text.size());
  s.prompt = head_;
  s.prompt += s.input;
  s.prompt += tail_text;
  s.tokens_to_generate = ttg_;
  s.metric = "babilong";

  if (!separable) {
    // Tokenizers that are not whitespace-separable: count the real prompt and trim whole words while it is over.
    prompt_tokens = tok.count(s.prompt);
    while (length > 0 && prompt_tokens > budget) {
      size_t cut = s.input.find_last_of(' ');
      if (cut == std::string::npos) throw Error("babilong " + task_ + ": cannot fit length " + format_length(length));
      s.input.resize(cut);
      s.prompt = head_ + s.input + tail_text;
      prompt_tokens = tok.count(s.prompt);
    }
  }
  s.prompt_tokens = prompt_tokens;

  // Token position in the prompt of each fact's first token.
  const int64_t first_shift = static_cast<int64_t>(head_ids.size()) - first_tok(items.front());
  std::vector<int64_t> fact_pos(nf);
  for (size_t f = 0; f < nf; ++f) fact_pos[f] = first_shift + fact_ctx_tok[f];
  if (items.front().fact) {
    // The first fact follows "<context>\n" directly: find the token where its text starts.
    size_t f = items.front().i;
    size_t head_len = head_.size();
    for (size_t k = head_ids.size(); k-- > 0;) {
      std::vector<int32_t> pre(head_ids.begin(), head_ids.begin() + static_cast<long>(k));
      if (tok.decode(pre).size() <= head_len) {
        fact_pos[f] = static_cast<int64_t>(k);
        break;
      }
    }
  }

  if (opts_.keep_ids) {
    if (!separable) {
      s.prompt_ids = tok.encode_long(s.prompt);
    } else {
      s.prompt_ids.reserve(static_cast<size_t>(prompt_tokens));
      s.prompt_ids = head_ids;
      for (size_t k = 0; k < items.size(); ++k) {
        const Item& it = items[k];
        bool skip_first = k == 0, skip_last = k + 1 == items.size();
        if (it.fact) {
          auto& w = fids[it.i];
          for (size_t x = skip_first ? 1 : 0; x + (skip_last ? 1 : 0) < w.size(); ++x)
            s.prompt_ids.insert(s.prompt_ids.end(), w[x].begin(), w[x].end());
        } else {
          size_t a = pieces[it.i].a + (skip_first ? 1 : 0), b = pieces[it.i].b - (skip_last ? 1 : 0);
          if (b > a) s.prompt_ids.insert(s.prompt_ids.end(), corpus().ids(a), corpus().ids(a) + corpus().tokens(a, b));
        }
      }
      s.prompt_ids.insert(s.prompt_ids.end(), tail_ids.begin(), tail_ids.end());
    }
  }

  // 5. Metadata.
  auto& m = s.meta;
  m["sample_seed"] = hex64(seed);
  m["seed"] = opts_.seed;
  m["tokenizer"] = tok.hash();
  m["haystack"] = length > 0 ? corpus().hash() : std::string();
  m["template"] = template_id_;
  m["task_title"] = babi::task_title(task_);
  m["story_id"] = hex64(story_seed) + "/q" + std::to_string(inst.question_number);
  m["num_facts"] = nf;
  m["support"] = inst.support;
  m["fact_positions"] = fact_pos;
  std::vector<int64_t> spos;
  std::vector<double> sdepth;
  for (int f : inst.support) {
    spos.push_back(fact_pos[f]);
    double d = ctx_tokens > 0 ? 100.0 * static_cast<double>(fact_ctx_tok[f]) / static_cast<double>(ctx_tokens) : 0.0;
    sdepth.push_back(std::round(d * 100.0) / 100.0);
  }
  m["support_positions"] = spos;
  m["support_depths"] = sdepth;
  m["context_tokens"] = ctx_tokens;
  m["background_pieces"] = pieces.size();
  m["background_start_sentence"] = start_sentence;
  if (depth) m["depth"] = *depth;
  m["prompt_tokens"] = s.prompt_tokens;
  return s;
}

}  // namespace

std::vector<std::string> babilong_task_names() { return babilong_catalog().names(); }

std::unique_ptr<TaskGenerator> make_babilong_generator(const std::string& task, const Resources& res,
                                                       const GenOptions& opts) {
  return std::make_unique<BabilongGenerator>(babilong_catalog().at(task).name, res, opts);
}

}  // namespace lctx
