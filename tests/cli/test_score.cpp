// End-to-end tests of `lctx score` on predictions files built here.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/strings.hpp"
#include "core/lengths.hpp"
#include "core/files.hpp"
#include "tests/catch.hpp"

using nlohmann::json;

namespace {

std::string tmpdir(const std::string& name) {
  std::string d = "/tmp/lctx_test_score_" + name + "_" + std::to_string(::getpid());
  std::system(("rm -rf " + d).c_str());
  lctx::ensure_dir(d);
  return d;
}

void write_lines(const std::string& path, const std::vector<json>& recs) {
  std::string s;
  for (auto& r : recs) s += r.dump() + "\n";
  lctx::write_file_atomic(path, s);
}

json ruler_rec(const std::string& task, int64_t length, int i, const std::vector<std::string>& refs,
               const std::string& pred) {
  return {{"index", i}, {"input", "ctx"}, {"outputs", refs}, {"length", length - 7}, {"answer_prefix", " Answer:"},
          {"lctx", {{"task", task}, {"suite", "ruler"}, {"length", length}}}, {"pred", pred}};
}

struct BabiCase { const char* task; const char* question; const char* target; };
const BabiCase kBabi[] = {
    {"qa1", "Where is Mary? ", "bathroom"}, {"qa2", "Where is the football? ", "garden"},
    {"qa3", "Where was the apple before the kitchen? ", "office"}, {"qa4", "What is north of the kitchen?", "garden"},
    {"qa5", "What did Fred give to Jeff? ", "milk"}, {"qa6", "Is John in the kitchen? ", "yes"},
    {"qa7", "How many objects is Daniel carrying? ", "two"}, {"qa8", "What is Sandra carrying? ", "apple,milk"},
    {"qa9", "Is Mary in the office? ", "no"}, {"qa10", "Is Bill in the park? ", "maybe"},
    {"qa11", "Where is Daniel? ", "hallway"}, {"qa12", "Where is Sandra? ", "kitchen"},
    {"qa13", "Where is John? ", "bedroom"}, {"qa14", "Where was Julie before the school? ", "park"},
    {"qa15", "What is gertrude afraid of? ", "wolf"}, {"qa16", "What color is Greg? ", "yellow"},
    {"qa17", "Is the pink rectangle to the right of the blue square? ", "yes"},
    {"qa18", "Does the box fit in the suitcase? ", "yes"},
    {"qa19", "How do you go from the kitchen to the garden? ", "s,e"}, {"qa20", "Where will jason go? ", "kitchen"},
};

std::vector<std::string> write_fixture(const std::string& d, bool reference_answers) {
  std::vector<std::string> files;
  const std::vector<std::string> ruler = {"niah_single_1", "niah_multivalue", "vt", "cwe", "fwe", "qa_1", "qa_2"};
  for (int64_t len : {4096, 8192}) {
    for (auto& t : ruler) {
      std::vector<json> recs;
      for (int i = 0; i < 5; ++i) {
        std::vector<std::string> refs = {"ref" + std::to_string(i) + "a", "ref" + std::to_string(i) + "b"};
        std::string pred = reference_answers ? " " + refs[0] + ", " + refs[1] + "\n" : "";
        recs.push_back(ruler_rec(t, len, i, refs, pred));
      }
      lctx::ensure_dir(d + "/ruler/" + t);
      files.push_back(d + "/ruler/" + t + "/" + lctx::format_length(len) + ".jsonl");
      write_lines(files.back(), recs);
    }
  }
  for (auto& c : kBabi) {
    std::vector<json> recs;
    for (int i = 0; i < 3; ++i)
      recs.push_back({{"input", "facts"}, {"question", c.question}, {"target", c.target},
                      {"output", reference_answers ? c.target : ""}});
    lctx::ensure_dir(d + "/babilong/" + c.task);
    files.push_back(d + "/babilong/" + c.task + "/1k.jsonl");
    write_lines(files.back(), recs);
  }
  return files;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += " " + x;
  return s;
}

}  // namespace

TEST_CASE("lctx score: reference answers score 100, empty predictions 0 with nulls counted") {
  for (bool ref : {true, false}) {
    std::string d = tmpdir(ref ? "ref" : "empty");
    auto files = write_fixture(d, ref);
    auto r = lctx_test::run_lctx("score" + join(files) + " --out " + d + "/summary.json --csv " + d + "/summary.csv");
    INFO(r.out);
    REQUIRE(r.rc == 0);
    CHECK(r.out.find("niah_single_1") != std::string::npos);
    json s = json::parse(lctx::read_file(d + "/summary.json"));
    CHECK(s["schema"] == "lctx.score/1");
    REQUIRE(s["results"].size() == 7 * 2 + 20);
    for (auto& c : s["results"]) {
      INFO(c.dump());
      CHECK(c["score"].get<double>() == (ref ? 100.0 : 0.0));
      CHECK(c["nulls"].get<int>() == (ref ? 0 : c["n"].get<int>()));
      if (c["suite"] == "ruler") {
        CHECK(c["metric"] == (c["task"].get<std::string>().rfind("qa", 0) == 0 ? "string_match_part" : "string_match_all"));
        CHECK(c["n"] == 5);
      } else {
        CHECK(c["metric"] == "babilong");
        CHECK(c["length"] == 1024);  // from the file name 1k.jsonl
      }
    }
    std::string csv = lctx::read_file(d + "/summary.csv");
    CHECK(csv.rfind("0,1,2,", 0) == 0);
    CHECK(csv.find("\nTasks,niah_single_1@4k,niah_single_1@8k,") != std::string::npos);
    CHECK(csv.find(ref ? "\nScore,100.0,100.0," : "\nScore,0.0,0.0,") != std::string::npos);  // as RULER writes
  }
}

TEST_CASE("lctx score: partial matches, per-sample averaging and the default summary path") {
  std::string d = tmpdir("partial");
  write_lines(d + "/niah_multikey_1.jsonl",  // RULER layout: task from the file name, no lctx metadata
              {{{"index", 0}, {"input", "c"}, {"outputs", {"a1", "b1", "c1"}}, {"length", 4000}, {"pred", "A1 b1"}},
               {{"index", 1}, {"input", "c"}, {"outputs", {"a2"}}, {"length", 4010}, {"pred", "a2"}}});
  write_lines(d + "/qa_1.jsonl",
              {{{"index", 0}, {"input", "c"}, {"outputs", {"Paris", "paris, France"}}, {"pred", "It is paris"}},
               {{"index", 1}, {"input", "c"}, {"outputs", {"Rome"}}, {"pred", "Milan"}},
               {{"index", 2}, {"input", "c"}, {"outputs", {"Oslo"}}, {"pred", "\n\n"}}});
  auto r = lctx_test::run_lctx("score " + d + "/niah_multikey_1.jsonl " + d + "/qa_1.jsonl --length 4k");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  json s = json::parse(lctx::read_file(d + "/summary.json"));
  REQUIRE(s["results"].size() == 2);
  CHECK(s["results"][0]["task"] == "niah_multikey_1");
  CHECK(s["results"][0]["score"].get<double>() == (2.0 / 3.0 + 1.0) / 2.0 * 100.0);  // full precision
  CHECK(s["results"][1]["task"] == "qa_1");
  CHECK(s["results"][1]["score"].get<double>() == 1.0 / 3.0 * 100.0);
  CHECK(s["results"][1]["nulls"] == 1);
  CHECK(std::abs(s["averages"][0]["score"].get<double>() - 58.3333333333) < 1e-9);
}

TEST_CASE("lctx score: BABILong result CSVs (pandas quoting and missing values), RULER-layout others.lctx") {
  std::string d = tmpdir("csv");
  // As run_model_on_babilong.py writes them: unnamed index column, target, output, question.
  lctx::write_file_atomic(d + "/qa1_4k_instruction_yes_examples_yes_post_prompt_yes_chat_template_no.csv",
                          ",target,output,question\n"
                          "0,hallway,The most recent location of John is hallway.,Where is John? \n"
                          "1,bathroom,\"Mary, in the\n\xE2\x84\xAA bathroom\",Where is Mary? \n"   // quoted, newline
                          "2,kitchen,\xE2\x84\xAAITCHEN,Where is Sandra? \n"                         // Kelvin sign
                          "3,garden,,Where is Daniel? \n");                                              // empty
  lctx::write_file_atomic(d + "/qa7_0k_x.csv", ",target,output,question\n0,none,None,How many objects is Mary carrying? \n"
                                                "1,one,one,How many objects is John carrying? \n");
  // A RULER prediction file as call_api.py writes it from --layout ruler records: metadata under others.lctx.
  write_lines(d + "/vt.jsonl", {{{"index", 0}, {"pred", "X\xE2\x84\xAA" "FVQ, AB"}, {"input", "c"}, {"outputs", {"xkfvq", "ab"}},
                                 {"others", {{"lctx", {{"task", "vt"}, {"suite", "ruler"}, {"target_length", 8192}}}}},
                                 {"truncation", -1}, {"length", 8000}}});
  auto r = lctx_test::run_lctx("score " + d + "/qa1_4k_instruction_yes_examples_yes_post_prompt_yes_chat_template_no.csv " +
                               d + "/qa7_0k_x.csv " + d + "/vt.jsonl --out " + d + "/s.json");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  json s = json::parse(lctx::read_file(d + "/s.json"));
  REQUIRE(s["results"].size() == 3);
  CHECK(s["results"][0]["task"] == "vt");
  CHECK(s["results"][0]["length"] == 8192);
  CHECK(s["results"][0]["score"].get<double>() == 100.0);
  CHECK(s["results"][1]["task"] == "qa1");
  CHECK(s["results"][1]["score"].get<double>() == 75.0);
  CHECK(s["results"][1]["nulls"] == 1);
  // pandas (2.x, as BABILong pins) reads "None" as missing: an empty output, not the label "none".
  CHECK(s["results"][2]["task"] == "qa7");
  CHECK(s["results"][2]["score"].get<double>() == 50.0);
  lctx::write_file_atomic(d + "/qa2_4k_bad.csv", ",target,question\n0,garden,Where?\n");
  auto bad = lctx_test::run_lctx("score " + d + "/qa2_4k_bad.csv --out " + d + "/t.json");
  CHECK(bad.rc != 0);
  CHECK(bad.out.find("not a BABILong result CSV") != std::string::npos);
}

TEST_CASE("lctx score: --metric babilong-strict fixes qa7 none and yes/no substrings") {
  std::string d = tmpdir("strict");
  write_lines(d + "/qa7.jsonl", {{{"question", "How many objects is Mary carrying? "}, {"target", "none"}, {"pred", "none"}},
                                 {{"question", "How many objects is Mary carrying? "}, {"target", "one"}, {"pred", "One."}}});
  write_lines(d + "/qa6.jsonl", {{{"question", "Is John in the office? "}, {"target", "yes"}, {"pred", "yes, I know"}}});
  auto compat = lctx_test::run_lctx("score " + d + "/qa7.jsonl " + d + "/qa6.jsonl --out " + d + "/c.json");
  auto strict = lctx_test::run_lctx("score --metric babilong-strict " + d + "/qa7.jsonl " + d + "/qa6.jsonl --out " + d + "/s.json");
  REQUIRE(compat.rc == 0);
  REQUIRE(strict.rc == 0);
  json c = json::parse(lctx::read_file(d + "/c.json")), s = json::parse(lctx::read_file(d + "/s.json"));
  CHECK(c["results"][0]["task"] == "qa6");
  CHECK(c["results"][0]["score"].get<double>() == 0.0);
  CHECK(c["results"][1]["score"].get<double>() == 50.0);
  CHECK(s["results"][0]["score"].get<double>() == 100.0);
  CHECK(s["results"][1]["score"].get<double>() == 100.0);
  CHECK(s["results"][1]["metric"] == "babilong-strict");
}

TEST_CASE("lctx score: malformed input names file and line") {
  std::string d = tmpdir("bad");
  std::string ok = json{{"index", 0}, {"outputs", {"x"}}, {"pred", "x"}}.dump();
  lctx::write_file_atomic(d + "/vt.jsonl", ok + "\n{\"index\": 1, \"outputs\": [\n");
  auto r = lctx_test::run_lctx("score " + d + "/vt.jsonl");
  CHECK(r.rc != 0);
  CHECK(r.out.find("lctx: error: " + d + "/vt.jsonl:2: invalid JSON") != std::string::npos);

  lctx::write_file_atomic(d + "/cwe.jsonl", ok + "\n" + ok + "\n" + json{{"index", 2}, {"outputs", {"x"}}}.dump() + "\n");
  r = lctx_test::run_lctx("score " + d + "/cwe.jsonl");
  CHECK(r.rc != 0);
  CHECK(r.out.find(d + "/cwe.jsonl:3: missing 'pred'") != std::string::npos);

  lctx::write_file_atomic(d + "/qa2.jsonl", json{{"target", "garden"}, {"output", "garden"}}.dump() + "\n");
  r = lctx_test::run_lctx("score " + d + "/qa2.jsonl");
  CHECK(r.rc != 0);
  CHECK(r.out.find("qa2.jsonl:1: missing 'question'") != std::string::npos);

  lctx::write_file_atomic(d + "/preds.jsonl", ok + "\n");
  r = lctx_test::run_lctx("score " + d + "/preds.jsonl");
  CHECK(r.rc != 0);
  CHECK(r.out.find("preds.jsonl:1: cannot tell the task") != std::string::npos);

  r = lctx_test::run_lctx("score --metric exact " + d + "/vt.jsonl");
  CHECK(r.rc != 0);
  CHECK(r.out.find("unknown metric 'exact'") != std::string::npos);

  lctx::write_file_atomic(d + "/fwe.jsonl", "");
  r = lctx_test::run_lctx("score " + d + "/fwe.jsonl");
  CHECK(r.rc != 0);
  CHECK(r.out.find("fwe.jsonl: no records") != std::string::npos);
}
