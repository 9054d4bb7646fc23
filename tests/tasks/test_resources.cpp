#include <set>

#include "core/paths.hpp"
#include "tasks/corpus.hpp"
#include "tasks/tokenizer.hpp"
#include "tasks/words.hpp"
#include "tests/catch.hpp"

using namespace lctx;

TEST_CASE("tokenizer loads, round-trips and counts long text exactly", "[tokenizer]") {
  auto tok = Tokenizer::load(default_tokenizer_path());
  CHECK(tok->vocab_size() == 8192);
  CHECK(tok->whitespace_separable());
  CHECK(tok->hash().size() == 16);
  std::string s = "The special magic number for brave-table is: 1234567.";
  CHECK(tok->decode(tok->encode(s)) == s);
  REQUIRE_THROWS_WITH(Tokenizer::load("/nonexistent.model"), lctx_test::Contains("no such file"));
  REQUIRE_THROWS_WITH(Tokenizer::load(LCTX_TEST_DIR "/main.cpp"), lctx_test::Contains("not a valid"));
}

TEST_CASE("corpus words, sentences and cached ids agree with the tokenizer", "[corpus]") {
  auto tok = Tokenizer::load(default_tokenizer_path());
  auto c = Corpus::load(Corpus::default_dir(), *tok);
  REQUIRE(c->num_words() > 1000000);
  REQUIRE(c->num_sentences() > 30000);
  // A run of whole words, joined by spaces, encodes to the concatenation of the cached word ids.
  for (size_t s : {size_t(0), size_t(100), size_t(5000), c->num_sentences() - 1}) {
    size_t a = c->sentence_begin(s), b = c->sentence_end(s);
    auto ids = tok->encode(c->text(a, b));
    std::vector<int32_t> cached(c->ids(a), c->ids(a) + c->tokens(a, b));
    REQUIRE(ids == cached);
  }
  // Long text: the segmented, threaded count equals the sum of cached per-word ids, over the whole corpus.
  std::string_view big = c->text(0, c->num_words());
  REQUIRE(big.size() > (8u << 20));
  CHECK(tok->count(big) == c->num_tokens());
  CHECK(tok->count(c->text(0, 3000)) == static_cast<int64_t>(tok->encode(c->text(0, 3000)).size()));
  // Second load hits the cache and gives the same table.
  auto c2 = Corpus::load(Corpus::default_dir(), *tok);
  CHECK(c2->num_tokens() == c->num_tokens());
  CHECK(c2->num_sentences() == c->num_sentences());
  REQUIRE_THROWS_WITH(Corpus::load("/nonexistent-dir", *tok), lctx_test::Contains("no such directory"));
}

TEST_CASE("word lists", "[words]") {
  auto w = WordLists::load();
  CHECK(w->nouns.size() > 10000);
  CHECK(w->adjectives.size() > 5000);
  CHECK(w->verbs.size() > 3000);
  CHECK(w->names.size() > 1000);
}
