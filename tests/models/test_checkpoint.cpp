// Checkpoints: safetensors round trip (F32, BF16, metadata), model round trip with identical logits, and
// one-line errors for corrupt, truncated and mismatched files.
#include <unistd.h>
#include <filesystem>
#include <fstream>

#include "models/checkpoint.hpp"
#include "models/model.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "tests/catch.hpp"

using namespace lctx::models;
namespace fs = std::filesystem;

namespace {
std::string tmp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lctx_test_ckpt_" + std::to_string(::getpid()) + "_" + name);
  lctx::remove_tree(d);
  fs::create_directories(d);
  return d.string();
}
std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void spit(const std::string& p, const std::string& s) { std::ofstream(p, std::ios::binary | std::ios::trunc) << s; }
bool one_line_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
  } catch (const lctx::Error& e) {
    std::string m = e.what();
    INFO(m);
    return m.find('\n') == std::string::npos && m.find(needle) != std::string::npos;
  }
  return false;
}
}  // namespace

TEST_CASE("safetensors: round trip of F32 and BF16 with metadata", "[checkpoint]") {
  auto dir = tmp_dir("st");
  torch::manual_seed(41);
  auto a = torch::randn({3, 4}), b = torch::randn({5}).to(torch::kBFloat16), c = torch::randn({0, 2});
  write_safetensors(dir + "/x.safetensors", {{"a", a}, {"b.w", b}, {"c", c}}, {{"k", "v"}});
  REQUIRE(!fs::exists(dir + "/x.safetensors.tmp"));
  auto f = read_safetensors(dir + "/x.safetensors");
  REQUIRE(f.tensors.size() == 3);
  REQUIRE(f.metadata == nlohmann::json({{"k", "v"}}));
  REQUIRE(f.tensors[0].first == "a");
  REQUIRE(torch::equal(f.tensors[0].second, a));
  REQUIRE(f.tensors[1].second.scalar_type() == torch::kBFloat16);
  REQUIRE(torch::equal(f.tensors[1].second, b));
  REQUIRE(f.tensors[2].second.sizes() == c.sizes());
  // layout: 8-byte LE length, JSON header, data 8-aligned, little-endian floats
  auto raw = slurp(dir + "/x.safetensors");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(raw[i])) << (8 * i);
  REQUIRE((8 + n) % 8 == 0);
  auto h = nlohmann::json::parse(raw.substr(8, n));
  REQUIRE(h["a"]["dtype"] == "F32");
  REQUIRE(h["a"]["data_offsets"] == nlohmann::json({0, 48}));
  REQUIRE(h["b.w"]["dtype"] == "BF16");
  REQUIRE(raw.size() == 8 + n + 48 + 10);
  float first;
  std::memcpy(&first, raw.data() + 8 + n, 4);
  REQUIRE(first == a[0][0].item<float>());
  REQUIRE_THROWS_AS(write_safetensors(dir + "/y.safetensors", {{"i", torch::zeros({2}, torch::kLong)}}), lctx::Error);
  lctx::remove_tree(dir);
}

TEST_CASE("safetensors: corrupt and truncated files are one-line errors", "[checkpoint]") {
  auto dir = tmp_dir("bad");
  const std::string p = dir + "/m.safetensors";
  write_safetensors(p, {{"a", torch::randn({4, 4})}, {"b", torch::randn({2})}});
  const auto good = slurp(p);
  auto rd = [&]() { read_safetensors(p); };
  spit(p, good.substr(0, good.size() - 3));
  REQUIRE(one_line_error(rd, "corrupt"));
  spit(p, good.substr(0, 5));
  REQUIRE(one_line_error(rd, "corrupt"));
  spit(p, good + "xx");
  REQUIRE(one_line_error(rd, "trailing"));
  auto g = good;
  g[0] = char(0xff);
  g[5] = char(0x7f);
  spit(p, g);
  REQUIRE(one_line_error(rd, "header length"));
  g = good;
  g[8] = '[';
  spit(p, g);
  REQUIRE(one_line_error(rd, "corrupt"));
  g = good;
  auto pos = g.find("F32");
  g.replace(pos, 3, "I32");
  spit(p, g);
  REQUIRE(one_line_error(rd, "unsupported dtype"));
  REQUIRE(one_line_error([&]() { read_safetensors(dir + "/none.safetensors"); }, "cannot read"));
  lctx::remove_tree(dir);
}

TEST_CASE("checkpoint: save and load give identical logits; mismatches are errors", "[checkpoint]") {
  auto dir = tmp_dir("model");
  for (const char* kind : {"swa", "mamba"}) {
    INFO(kind);
    torch::manual_seed(42);
    auto m = build_model({{"kind", kind}, {"vocab", 300}, {"d_model", 32}, {"n_layers", 2}});
    save_checkpoint(dir, *m, {{"tokenizer_hash", "abc123"}, {"train", {{"steps", 7}}}});
    auto ck = load_checkpoint(dir, "abc123", torch::kCPU);
    REQUIRE(ck.config["arch"] == m->config());
    REQUIRE(ck.config["train"]["steps"] == 7);
    REQUIRE(ck.config.contains("lctx_version"));
    auto ids = torch::randint(0, 300, {1, 40}, torch::kLong);
    torch::NoGradGuard ng;
    REQUIRE(torch::equal(ck.model->forward_logits(ids), m->forward_logits(ids)));
    REQUIRE(load_checkpoint(dir, "", torch::kCPU).model->kind() == kind);
    REQUIRE(one_line_error([&]() { load_checkpoint(dir, "other", torch::kCPU); }, "tokenizer"));
  }
  // architecture in config.json does not match the weights
  auto cfg = nlohmann::json::parse(slurp(dir + "/config.json"));
  cfg["arch"]["d_model"] = 48;
  spit(dir + "/config.json", cfg.dump());
  REQUIRE(one_line_error([&]() { load_checkpoint(dir, "", torch::kCPU); }, "shape"));
  cfg["arch"]["d_model"] = 32;
  cfg["arch"]["n_layers"] = 3;
  spit(dir + "/config.json", cfg.dump());
  REQUIRE(one_line_error([&]() { load_checkpoint(dir, "", torch::kCPU); }, "missing"));
  cfg["arch"]["n_layers"] = 1;
  spit(dir + "/config.json", cfg.dump());
  REQUIRE(one_line_error([&]() { load_checkpoint(dir, "", torch::kCPU); }, "unexpected tensor"));
  cfg["arch"]["kind"] = "swa";
  spit(dir + "/config.json", cfg.dump());
  REQUIRE(one_line_error([&]() { load_checkpoint(dir, "", torch::kCPU); }, "swa config"));
  spit(dir + "/config.json", "{not json");
  REQUIRE(one_line_error([&]() { load_checkpoint(dir, "", torch::kCPU); }, "not valid JSON"));
  REQUIRE(one_line_error([&]() { load_checkpoint(dir + "/nowhere", "", torch::kCPU); }, "not a folder"));
  // BF16 weights load into the float32 model
  torch::manual_seed(43);
  auto m = build_model({{"kind", "swa"}, {"vocab", 300}, {"d_model", 32}, {"n_layers", 1}});
  save_checkpoint(dir, *m, {});
  NamedTensors bf;
  for (auto& [n, t] : model_tensors(*m)) bf.emplace_back(n, t.to(torch::kBFloat16));
  write_safetensors(dir + "/model.safetensors", bf);
  auto ck = load_checkpoint(dir, "", torch::kCPU);
  for (const auto& p : ck.model->named_parameters()) {
    REQUIRE(p.value().scalar_type() == torch::kFloat);
    REQUIRE((p.value() - m->named_parameters()[p.key()]).abs().max().item<double>() < 0.02);
  }
  lctx::remove_tree(dir);
}
