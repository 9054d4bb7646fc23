#include "harness/train_data.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "core/hash.hpp"
#include "core/rng.hpp"
#include "tasks/catalog.hpp"

namespace lctx::harness {

namespace {

MixComponent component(const std::string& name) {
  MixComponent c;
  c.name = name;
  if (name == "corpus" || name == "copy" || name == "copy-wide") return c;
  // Groups of catalogue tasks: "niah" = the single-needle RULER tasks (one key, one value, one query, no
  // distractor needles), "niah1" = the first of them, "babi" = the BABILong headline tasks. A bare task name
  // of a catalogue (vt, ...) is that task alone.
  const SuiteInfo& ruler = ruler_catalog();
  std::vector<std::string> single_needle;
  for (const auto& t : ruler.tasks)
    if (t.family == "niah" && t.params.value("keys", 0) == 1 && t.params.value("values", 0) == 1 &&
        t.params.value("queries", 0) == 1 && t.params.value("haystack", std::string()) != "needle")
      single_needle.push_back(t.name);
  if (name == "niah" || name == "niah1") {
    c.suite = ruler.name;
    c.tasks = name == "niah" ? single_needle : std::vector<std::string>{single_needle.at(0)};
  } else if (name == "babi") {
    c.suite = babilong_catalog().name;
    c.tasks = babilong_catalog().headline();
  } else if (const SuiteInfo* s = suite_of_task(name); s && s->find(name)->name == name) {
    c.suite = s->name;
    c.tasks = {name};
  } else if (name.rfind("ruler/", 0) == 0 || name.rfind("babilong/", 0) == 0) {
    const auto slash = name.find('/');
    c.suite = name.substr(0, slash);
    const std::string task = name.substr(slash + 1);
    const auto known = task_names(c.suite);
    if (std::find(known.begin(), known.end(), task) == known.end())
      throw Error("--mix: unknown task '" + task + "' for suite " + c.suite);
    c.tasks = {task};
  } else {
    throw Error("--mix: unknown component '" + name +
                "' (known: corpus, copy, copy-wide, niah, niah1, vt, babi, ruler/<task>, babilong/<task>)");
  }
  return c;
}

}  // namespace

std::vector<MixComponent> parse_mix(const std::string& spec) {
  std::vector<MixComponent> out;
  double total = 0;
  for (const auto& item : split_list(spec, ',')) {
    std::string name = item, w = "1";
    const auto colon = item.rfind(':');
    if (colon != std::string::npos) {
      name = item.substr(0, colon);
      w = item.substr(colon + 1);
    }
    while (!name.empty() && name.back() == ' ') name.pop_back();
    while (!w.empty() && w.front() == ' ') w.erase(w.begin());
    double weight = 0;
    try {
      size_t used = 0;
      weight = std::stod(w, &used);
      if (used != w.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw Error("--mix: bad weight '" + w + "' for '" + name + "' (expected NAME:WEIGHT,...)");
    }
    if (!std::isfinite(weight) || weight < 0) throw Error("--mix: weight of '" + name + "' must be >= 0");
    for (const auto& c : out)
      if (c.name == name) throw Error("--mix: '" + name + "' appears twice");
    auto c = component(name);
    c.weight = weight;
    total += weight;
    out.push_back(std::move(c));
  }
  if (out.empty()) throw Error("--mix: empty mixture (expected e.g. \"corpus:0.3,niah:0.7\")");
  if (!(total > 0)) throw Error("--mix: all weights are zero");
  for (auto& c : out) c.weight /= total;
  return out;
}

struct TrainData::Gens {
  std::map<std::string, std::unique_ptr<TaskGenerator>> by_name;  // "<suite>/<task>"
};

TrainData::TrainData(const TrainDataOptions& opt, const Resources& res)
    : opt_(opt), res_(res), mix_(parse_mix(opt.mix)), gens_(std::make_unique<Gens>()) {
  if (opt_.context < 16) throw Error("train data: context must be >= 16 tokens");
  if (opt_.lengths.empty()) opt_.lengths = {opt_.context};
  for (auto L : opt_.lengths)
    if (L < 1 || L > opt_.context)
      throw Error("train data: sample length " + std::to_string(L) + " is outside [1, context=" +
                  std::to_string(opt_.context) + "]");
  if (opt_.prompt_weight < 0) throw Error("train data: prompt weight must be >= 0");
  if (opt_.loss_norm != "token" && opt_.loss_norm != "row")
    throw Error("train data: loss normalisation must be token or row (got '" + opt_.loss_norm + "')");
  if (!res_.tokenizer) throw Error("train data: no tokenizer");
  eos_id_ = res_.tokenizer->eos_id();
  pad_id_ = res_.tokenizer->pad_id() >= 0 ? res_.tokenizer->pad_id() : eos_id_;
  GenOptions g;
  g.seed = training_run_seed(opt_.seed);
  g.keep_ids = true;
  g.haystack_dir = opt_.haystack_dir;
  for (const auto& c : mix_) {
    if (c.suite.empty()) {  // corpus, copy, copy-wide: rows built from the haystack corpus
      if (!res_.corpus) throw Error("train data: the " + c.name + " component needs a haystack corpus");
      if (res_.corpus->num_tokens() < 4 * (opt_.context + 1))
        throw Error("train data: the corpus is too small for context " + std::to_string(opt_.context));
      continue;
    }
    if (c.weight <= 0) continue;
    for (const auto& t : c.tasks) {
      auto gen = make_generator(c.suite, t, res_, g);
      for (auto L : opt_.lengths)
        if (L < gen->min_length())
          throw Error("train data: " + c.suite + "/" + t + " needs length >= " +
                      std::to_string(gen->min_length()) + " (got " + std::to_string(L) + ")");
      gens_->by_name[c.suite + "/" + t] = std::move(gen);
    }
  }
}

TrainData::~TrainData() = default;

TrainRow TrainData::corpus_row(Rng& rng) const {
  const Corpus& C = *res_.corpus;
  const int64_t need = opt_.context + 1;
  TrainRow r;
  r.source = "corpus";
  r.tokens.reserve(need);
  size_t w = rng.below(C.num_words());
  while (static_cast<int64_t>(r.tokens.size()) < need) {
    if (w >= C.num_words()) w = 0;  // wrap to the start of the corpus
    const int32_t* ids = C.word_ids(w);
    for (int32_t k = 0; k < C.word_tokens(w) && static_cast<int64_t>(r.tokens.size()) < need; ++k)
      r.tokens.push_back(ids[k]);
    ++w;
  }
  r.weight.assign(opt_.context, 1.0f);
  return r;
}

// m tokens of corpus words drawn independently (no sentence context) and, one word in five, a random 1-9
// digit number: text whose next token cannot be guessed from its neighbours.
std::vector<int32_t> TrainData::random_segment(Rng& rng, int64_t m) const {
  const Corpus& C = *res_.corpus;
  std::vector<int32_t> seg;
  seg.reserve(m + 16);
  while (static_cast<int64_t>(seg.size()) < m) {
    if (rng.below(5) == 0) {
      std::string num(static_cast<size_t>(rng.range(1, 9)), '0');
      for (auto& ch : num) ch = static_cast<char>('0' + rng.below(10));
      for (int32_t id : res_.tokenizer->encode(num)) seg.push_back(id);
    } else {
      const size_t w = rng.below(C.num_words());
      const int32_t* ids = C.word_ids(w);
      seg.insert(seg.end(), ids, ids + C.word_tokens(w));
    }
  }
  seg.resize(m);
  return seg;
}

TrainRow TrainData::copy_row(Rng& rng) const {
  // A segment A of m tokens (m uniform in [T/4, T/2]) followed by A again; the loss is on the second copy
  // from its second token on. The only way to predict the second copy is to find the matching place m
  // tokens back (beyond a short sliding window) and copy what follows it: the retrieval and copy skill of
  // the needle tasks, with ~T/3 supervised tokens per row instead of ~9.
  const int64_t T = opt_.context;
  const int64_t m = rng.range(std::max<int64_t>(2, T / 4), std::max<int64_t>(2, T / 2));
  const auto seg = random_segment(rng, m);
  TrainRow r;
  r.source = "copy";
  r.tokens = seg;
  r.tokens.insert(r.tokens.end(), seg.begin(), seg.end());  // 2m <= T < T + 1
  r.answer_tokens = m - 1;
  r.weight.assign(T, 0.0f);
  for (int64_t j = m; j < 2 * m - 1; ++j) r.weight[j] = 1.0f;  // predicts tokens m+1 .. 2m-1
  r.tokens.resize(T + 1, pad_id_);
  return r;
}

TrainRow TrainData::copy_wide_row(Rng& rng) const {
  // Copy episodes packed back to back until the row is full: segment A_i of m_i tokens (m_i uniform in
  // [4, T/2], the last one shortened to fit), then A_i again, loss on each repeat from its second token.
  // Short distances teach the local window attention to copy (a needle right before the question), long
  // ones the retrieval; every row is ~half supervised.
  const int64_t T = opt_.context, need = T + 1;
  TrainRow r;
  r.source = "copy-wide";
  r.weight.assign(T, 0.0f);
  while (need - static_cast<int64_t>(r.tokens.size()) >= 8) {
    const int64_t room = (need - static_cast<int64_t>(r.tokens.size())) / 2;
    const int64_t m = std::min(rng.range(4, std::max<int64_t>(4, T / 2)), room);
    const auto seg = random_segment(rng, m);
    const int64_t start = static_cast<int64_t>(r.tokens.size());
    r.tokens.insert(r.tokens.end(), seg.begin(), seg.end());
    r.tokens.insert(r.tokens.end(), seg.begin(), seg.end());
    for (int64_t j = start + m; j < start + 2 * m - 1; ++j) r.weight[j] = 1.0f;
    r.answer_tokens += m - 1;
  }
  r.tokens.resize(need, pad_id_);
  return r;
}

TrainRow TrainData::task_row(const MixComponent& c, Rng& rng, int64_t index) const {
  const std::string& task = c.tasks[rng.below(c.tasks.size())];
  const int64_t L = opt_.lengths[rng.below(opt_.lengths.size())];
  const auto& gen = gens_->by_name.at(c.suite + "/" + task);
  Sample s = gen->generate(L, index);
  std::vector<int32_t> prompt = s.prompt_ids.empty() ? res_.tokenizer->encode(s.prompt_text()) : s.prompt_ids;
  std::string answer;
  if (c.suite == "babilong") {
    answer = s.target;
  } else {
    for (size_t i = 0; i < s.outputs.size(); ++i) answer += (i ? ", " : "") + s.outputs[i];
  }
  // The prompt ends with the answer prefix (no trailing space); SentencePiece's dummy prefix gives the
  // answer's leading "▁", i.e. the ids the model emits after the prefix in running text.
  std::vector<int32_t> ans = res_.tokenizer->encode(answer);
  ans.push_back(eos_id_);

  TrainRow r;
  r.source = c.suite + "/" + task;
  const int64_t need = opt_.context + 1;
  r.tokens = prompt;
  r.tokens.insert(r.tokens.end(), ans.begin(), ans.end());
  const int64_t P = static_cast<int64_t>(prompt.size());
  if (static_cast<int64_t>(r.tokens.size()) > need) {
    r.truncated = true;
    r.tokens.resize(need);
  }
  const int64_t n = static_cast<int64_t>(r.tokens.size());
  r.answer_tokens = std::max<int64_t>(0, n - P);
  r.weight.assign(opt_.context, 0.0f);
  // weight[i] is the weight of predicting tokens[i + 1].
  for (int64_t j = 1; j < n; ++j) r.weight[j - 1] = j >= P ? 1.0f : static_cast<float>(opt_.prompt_weight);
  r.tokens.resize(need, pad_id_);
  return r;
}

TrainRow TrainData::row(int64_t step, int64_t row) const {
  const uint64_t h = hash_combine(hash_combine(training_run_seed(opt_.seed), static_cast<uint64_t>(step)),
                                  static_cast<uint64_t>(row));
  Rng rng(h);
  const double u = rng.uniform();
  const MixComponent* pick = &mix_.back();
  double acc = 0;
  for (const auto& c : mix_) {
    acc += c.weight;
    if (u < acc && c.weight > 0) {
      pick = &c;
      break;
    }
  }
  if (pick->name == "corpus") return corpus_row(rng);
  if (pick->name == "copy") return copy_row(rng);
  if (pick->name == "copy-wide") return copy_wide_row(rng);
  // Sample indices are unique per (step, row) for batches below 2^20 rows.
  return task_row(*pick, rng, (step << 20) + row);
}

models::Batch TrainData::batch(int64_t step, int64_t batch) const {
  std::vector<TrainRow> rows(batch);
  const int nthreads = static_cast<int>(std::min<int64_t>(batch, 2));
  std::vector<std::thread> pool;
  std::exception_ptr err;
  std::mutex mu;
  for (int t = 0; t < nthreads; ++t)
    pool.emplace_back([&, t] {
      try {
        for (int64_t i = t; i < batch; i += nthreads) rows[i] = row(step, i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!err) err = std::current_exception();
      }
    });
  for (auto& th : pool) th.join();
  if (err) std::rethrow_exception(err);
  const int64_t T = opt_.context;
  auto tokens = torch::empty({batch, T + 1}, torch::kInt64);
  auto weight = torch::empty({batch, T}, torch::kFloat32);
  auto tk = tokens.accessor<int64_t, 2>();
  auto wk = weight.accessor<float, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    double sum = 0;
    for (float w : rows[b].weight) sum += w;
    const float scale = opt_.loss_norm == "row" && sum > 0 ? static_cast<float>(1.0 / sum) : 1.0f;
    for (int64_t i = 0; i <= T; ++i) tk[b][i] = rows[b].tokens[i];
    for (int64_t i = 0; i < T; ++i) wk[b][i] = rows[b].weight[i] * scale;
  }
  return {tokens, weight};
}

models::BatchSource TrainData::source() const {
  return [this](int64_t step, int64_t batch) { return this->batch(step, batch); };
}

nlohmann::json TrainData::describe() const {
  nlohmann::json mix = nlohmann::json::object();
  for (const auto& c : mix_) mix[c.name] = c.weight;
  nlohmann::json d = {{"mix", mix},
          {"context", opt_.context},
          {"lengths", opt_.lengths},
          {"data_seed", opt_.seed},
          {"generator_seed_tag", "bit 63 set (seed | 2^63)"},
          {"prompt_weight", opt_.prompt_weight},
          {"tokenizer_hash", res_.tokenizer->hash()}};
  if (opt_.loss_norm != "token") d["loss_norm"] = opt_.loss_norm;  // absent = token (runs from before the option)
  return d;
}

}  // namespace lctx::harness
