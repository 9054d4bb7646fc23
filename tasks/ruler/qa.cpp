// Question answering (the RULER qa family; the catalogue's `dataset` picks SQuAD v2 dev or HotpotQA dev
// distractor): the golden paragraph(s) of a question among distractor paragraphs, "Document i:\n..." blocks,
// until the length is filled.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "core/files.hpp"
#include "tasks/ruler/ruler.hpp"

namespace fs = std::filesystem;

namespace lctx::ruler {
namespace {

struct QaData {
  struct Q {
    std::string query;
    std::vector<std::string> outputs;
    std::vector<uint32_t> golden, more;  // doc indices: golden paragraphs, same-source extra paragraphs
  };
  std::vector<std::string> docs;
  std::vector<Q> qas;
  std::string path;
};

bool is_squad(const nlohmann::json& j) { return j.is_object() && j.contains("data") && j["data"].is_array(); }
bool is_hotpot(const nlohmann::json& j) {
  return j.is_array() && !j.empty() && j[0].is_object() && j[0].contains("context") && j[0].contains("question");
}

// SQuAD v2: every answerable question; its paragraph is golden, the article's other paragraphs come first
// among the distractors (as RULER does).
void read_squad(const nlohmann::json& j, QaData& d) {
  std::set<std::string> all;
  for (auto& art : j["data"])
    for (auto& p : art.at("paragraphs")) all.insert(p.at("context").get<std::string>());
  d.docs.assign(all.begin(), all.end());
  std::map<std::string, uint32_t> idx;
  for (uint32_t i = 0; i < d.docs.size(); ++i) idx[d.docs[i]] = i;
  for (auto& art : j["data"]) {
    std::vector<uint32_t> art_docs;
    for (auto& p : art["paragraphs"]) art_docs.push_back(idx[p["context"].get<std::string>()]);
    for (auto& p : art["paragraphs"]) {
      uint32_t me = idx[p["context"].get<std::string>()];
      for (auto& q : p.at("qas")) {
        if (q.value("is_impossible", false)) continue;
        QaData::Q x;
        x.query = q.at("question").get<std::string>();
        for (auto& a : q.at("answers")) x.outputs.push_back(a.at("text").get<std::string>());
        if (x.outputs.empty()) continue;
        x.golden = {me};
        for (uint32_t o : art_docs)
          if (o != me && std::find(x.more.begin(), x.more.end(), o) == x.more.end()) x.more.push_back(o);
        d.qas.push_back(std::move(x));
      }
    }
  }
}

// HotpotQA distractor: documents "title\nsentences"; the supporting-fact paragraphs are golden, the
// question's other (distractor) paragraphs come first among the distractors.
void read_hotpot(const nlohmann::json& j, QaData& d) {
  auto doc_of = [](const nlohmann::json& c) {
    std::string s = c.at(0).get<std::string>() + "\n";
    for (auto& sent : c.at(1)) s += sent.get<std::string>();
    return s;
  };
  std::set<std::string> all;
  for (auto& q : j)
    for (auto& c : q.at("context")) all.insert(doc_of(c));
  d.docs.assign(all.begin(), all.end());
  std::map<std::string, uint32_t> idx;
  for (uint32_t i = 0; i < d.docs.size(); ++i) idx[d.docs[i]] = i;
  for (auto& q : j) {
    QaData::Q x;
    x.query = q.at("question").get<std::string>();
    x.outputs = {q.at("answer").get<std::string>()};
    std::set<std::string> sup;
    if (q.contains("supporting_facts"))
      for (auto& f : q["supporting_facts"]) sup.insert(f.at(0).get<std::string>());
    for (auto& c : q["context"]) {
      uint32_t i = idx[doc_of(c)];
      bool gold = sup.empty() || sup.count(c.at(0).get<std::string>());
      auto& v = gold ? x.golden : x.more;
      if (std::find(v.begin(), v.end(), i) == v.end()) v.push_back(i);
    }
    d.qas.push_back(std::move(x));
  }
}

std::string find_file(const std::string& path, bool squad) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("--qa-data " + path + ": no such file or directory");
  if (!fs::is_directory(path, ec)) return path;
  const std::vector<std::string> names = squad ? std::vector<std::string>{"squad.json", "dev-v2.0.json", "squad_v2_dev.json"}
                                               : std::vector<std::string>{"hotpotqa.json", "hotpot_dev_distractor_v1.json"};
  for (auto& n : names)
    if (fs::is_regular_file(fs::path(path) / n, ec)) return (fs::path(path) / n).string();
  std::vector<std::string> hits;
  for (auto& e : list_dir(path)) {
    std::string low = e.name;
    for (auto& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (e.is_file && fs::path(e.name).extension() == ".json" && low.find(squad ? "squad" : "hotpot") != std::string::npos)
      hits.push_back(e.path);
  }
  std::sort(hits.begin(), hits.end());
  if (hits.empty())
    throw Error("--qa-data " + path + ": no " + std::string(squad ? "SQuAD v2 dev (squad.json or dev-v2.0.json)" :
                "HotpotQA dev distractor (hotpotqa.json or hotpot_dev_distractor_v1.json)") + " file in this folder");
  return hits[0];
}

std::shared_ptr<const QaData> load_qa(const std::string& qa_data, const TaskInfo& info) {
  const std::string& task = info.name;
  const std::string dataset = info.params.at("dataset").get<std::string>();
  if (dataset != "squad" && dataset != "hotpotqa")
    throw Error("ruler catalogue: task " + task + " has the unknown dataset '" + dataset + "'");
  const bool squad = dataset == "squad";
  if (qa_data.empty())
    throw Error("ruler " + task + " needs --qa-data PATH (" + (squad ? "SQuAD v2.0 dev JSON" : "HotpotQA dev distractor JSON") +
                ", a file or a folder holding it)");
  auto d = std::make_shared<QaData>();
  d->path = find_file(qa_data, squad);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(d->path));
  } catch (const nlohmann::json::exception& e) {
    throw Error("--qa-data " + d->path + ": not valid JSON");
  }
  try {
    if (squad) {
      if (!is_squad(j))
        throw Error("--qa-data " + d->path + ": not a SQuAD v2 JSON file (" + task + " needs SQuAD v2.0 dev)");
      read_squad(j, *d);
    } else {
      if (!is_hotpot(j))
        throw Error("--qa-data " + d->path + ": not a HotpotQA JSON file (" + task + " needs HotpotQA dev distractor)");
      read_hotpot(j, *d);
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error("--qa-data " + d->path + ": unexpected layout (" + std::string(e.what()) + ")");
  }
  if (d->qas.empty() || d->docs.size() < 2) throw Error("--qa-data " + d->path + ": no usable questions");
  return d;
}

class Qa : public RulerTask {
 public:
  Qa(std::shared_ptr<const Ctx> ctx, const TaskInfo& info)
      : RulerTask(std::move(ctx), info), data_(load_qa(ctx_->opts.qa_data, info)) {}

 protected:
  Built build(int64_t budget, Rng& rng, std::optional<double> depth, int64_t index) const override {
    const bool keep_ids = ctx_->opts.keep_ids;
    const QaData& D = *data_;
    const QaData::Q& Q = D.qas[static_cast<size_t>(index) % D.qas.size()];
    ChunkMemo& memo = ChunkMemo::local(*ctx_->res.tokenizer);

    // The document sequence: golden, then the question's extra paragraphs (shuffled), then rounds of all
    // other non-golden paragraphs in fresh random orders (documents repeat only when the pool runs out).
    // Each gets a random sort key fixed at draw time, so the prompt order is stable as documents are added.
    std::vector<uint32_t> seq(Q.golden.begin(), Q.golden.end());
    std::vector<uint64_t> key;
    for (size_t i = 0; i < seq.size(); ++i) key.push_back(rng.next());
    {
      std::vector<uint32_t> more = Q.more;
      rng.shuffle(more);
      for (uint32_t m : more) {
        seq.push_back(m);
        key.push_back(rng.next());
      }
    }
    std::set<uint32_t> gold(Q.golden.begin(), Q.golden.end());
    std::vector<uint32_t> others;
    for (uint32_t i = 0; i < D.docs.size(); ++i)
      if (!gold.count(i)) others.push_back(i);
    Rng drng(rng.next());
    bool first_round = true;
    auto ensure = [&](size_t n) {
      while (seq.size() < n) {
        std::vector<uint32_t> round;
        std::set<uint32_t> skip(Q.more.begin(), Q.more.end());
        for (uint32_t o : others)
          if (!first_round || !skip.count(o)) round.push_back(o);
        first_round = false;
        if (round.empty()) round = others;
        drng.shuffle(round);
        for (uint32_t o : round) {
          seq.push_back(o);
          key.push_back(drng.next());
        }
      }
    };
    const std::string pre = tpl("instruction");
    const std::string q = fill(tpl("question"), {{"query", Q.query}});
    const std::string ap = tpl("answer_prefix");
    const std::string doc_tpl = tpl("document");
    const std::string dsep = tpl("document_separator");
    const size_t G = Q.golden.size();
    int64_t partial_words = 0;

    struct Marks {
      std::vector<size_t> gold;
      size_t answer = SIZE_MAX;
      std::vector<size_t> order;
    };
    // n whole documents of the sequence, plus `partial_words` words of document n.
    auto assemble = [&](PromptBuilder& pb, int64_t n, Marks* mk) {
      ensure(static_cast<size_t>(n) + 1);
      std::vector<size_t> order(static_cast<size_t>(n) + (partial_words > 0 ? 1 : 0));
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key[a] < key[b]; });
      if (depth && !order.empty()) {  // the first golden document goes to the requested depth
        order.erase(std::find(order.begin(), order.end(), size_t(0)));
        size_t at = static_cast<size_t>(std::lround(*depth / 100.0 * double(order.size())));
        order.insert(order.begin() + static_cast<std::ptrdiff_t>(std::min(at, order.size())), size_t(0));
      }
      pb.lit(pre);
      for (size_t k = 0; k < order.size(); ++k) {
        const size_t i = order[k];
        std::string text = D.docs[seq[i]];
        if (static_cast<int64_t>(i) == n) {  // the partial document
          size_t p = 0;
          for (int64_t w = 0; w < partial_words && p != std::string::npos; ++w) p = text.find(' ', p + 1);
          if (p != std::string::npos) text.resize(p);
        }
        if (k) pb.lit(dsep);
        std::string block = fill(doc_tpl, {{"i", std::to_string(k + 1)}, {"document", text}});
        if (mk && i < G) {
          mk->gold[i] = pb.mark();
          size_t off = mk->answer == SIZE_MAX ? block.find(Q.outputs[0]) : std::string::npos;
          if (off != std::string::npos) {
            pb.lit(std::string_view(block).substr(0, off));
            mk->answer = pb.mark();
            pb.lit(std::string_view(block).substr(off));
            continue;
          }
        }
        pb.lit(block);
      }
      if (mk) mk->order = order;
      pb.lit(q);
    };
    auto count = prompt_counter(memo, assemble, ap);
    int64_t n_cap = budget / 4 + static_cast<int64_t>(G) + 1;  // documents of the sequence (>= 4 tokens each)
    auto shifted = [&](int64_t extra) { return count(static_cast<int64_t>(G) + extra); };
    const double per_doc = double(memo.get(D.docs[seq[0]]).size()) + 8;
    int64_t extra = fit_units(shifted, budget, static_cast<int64_t>(double(budget) / per_doc), n_cap);
    if (extra < 0) throw TooShort{};
    const int64_t n = static_cast<int64_t>(G) + extra;
    ensure(static_cast<size_t>(n) + 1);
    {
      const std::string& t = D.docs[seq[static_cast<size_t>(n)]];
      const int64_t nw = static_cast<int64_t>(std::count(t.begin(), t.end(), ' ')) + 1;
      int64_t m = fit_units([&](int64_t w) { partial_words = w; return count(n); }, budget, nw / 2, nw - 1);
      partial_words = std::max<int64_t>(0, m);
    }

    Built b;
    b.haystack = "documents";
    b.outputs = Q.outputs;
    PromptBuilder pb(memo, true, keep_ids);
    Marks mk;
    mk.gold.assign(G, 0);
    assemble(pb, n, &mk);
    const size_t input_end = static_cast<size_t>(pb.bytes());
    pb.lit(ap);
    finish_built(b, pb, input_end, keep_ids);
    const size_t ndocs = mk.order.size();
    for (size_t g = 0; g < G; ++g) {
      b.needle_tokens.push_back(pb.mark_token(mk.gold[g]));
      b.needle_chars.push_back(pb.mark_char(mk.gold[g]));
      size_t pos = std::find(mk.order.begin(), mk.order.end(), g) - mk.order.begin();
      b.depths.push_back(ndocs > 1 ? 100.0 * double(pos) / double(ndocs - 1) : 0.0);
    }
    b.answer_token = mk.answer == SIZE_MAX ? -1 : pb.mark_token(mk.answer);
    b.answer_char = mk.answer == SIZE_MAX ? -1 : pb.mark_char(mk.answer);
    if (mk.answer != SIZE_MAX) b.extra["answer_char_offset"] = pb.mark_char(mk.answer);
    b.extra["documents"] = ndocs;
    b.extra["partial_document_words"] = partial_words;
    b.extra["question_index"] = static_cast<size_t>(index) % D.qas.size();
    b.extra["qa_source"] = fs::path(D.path).filename().string();
    return b;
  }

 private:
  std::shared_ptr<const QaData> data_;
};

}  // namespace

std::unique_ptr<TaskGenerator> make_qa(std::shared_ptr<const Ctx> ctx, const TaskInfo& info) {
  return std::make_unique<Qa>(std::move(ctx), info);
}

}  // namespace lctx::ruler
