// Architecture configs (see config.hpp).
#include "models/config.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace lctx::models {

// ---- ConfigReader ---------------------------------------------------------------------------------------
ConfigReader::ConfigReader(const nlohmann::json& j, std::string what) : j_(j), what_(std::move(what)) {
  if (!j_.is_object()) throw Error(what_ + ": expected a JSON object");
}
bool ConfigReader::has(const std::string& key) const { return j_.contains(key); }
void ConfigReader::fail(const std::string& msg) const { throw Error(what_ + ": " + msg); }

int64_t ConfigReader::get_int(const std::string& key, int64_t def, int64_t min) {
  used_.insert(key);
  if (!j_.contains(key)) return def;
  const auto& v = j_.at(key);
  int64_t r = 0;
  if (v.is_number_integer()) {
    r = v.get<int64_t>();
  } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
             std::fabs(v.get<double>()) < 9.0e18) {
    r = int64_t(v.get<double>());
  } else {
    fail("'" + key + "' must be an integer, got " + v.dump().substr(0, 60));
  }
  if (r < min) fail("'" + key + "' must be >= " + std::to_string(min) + ", got " + std::to_string(r));
  return r;
}
double ConfigReader::get_double(const std::string& key, double def, double min) {
  used_.insert(key);
  if (!j_.contains(key)) return def;
  const auto& v = j_.at(key);
  if (!v.is_number()) fail("'" + key + "' must be a number, got " + v.dump().substr(0, 60));
  double r = v.get<double>();
  if (!(r >= min) || !std::isfinite(r)) fail("'" + key + "' must be >= " + std::to_string(min) + ", got " + v.dump().substr(0, 60));
  return r;
}
bool ConfigReader::get_bool(const std::string& key, bool def) {
  used_.insert(key);
  if (!j_.contains(key)) return def;
  const auto& v = j_.at(key);
  if (!v.is_boolean()) fail("'" + key + "' must be true or false, got " + v.dump().substr(0, 60));
  return v.get<bool>();
}
std::string ConfigReader::get_string(const std::string& key, const std::string& def,
                                     const std::set<std::string>& allowed) {
  used_.insert(key);
  if (!j_.contains(key)) return def;
  const auto& v = j_.at(key);
  if (!v.is_string()) fail("'" + key + "' must be a string, got " + v.dump().substr(0, 60));
  auto s = v.get<std::string>();
  if (!allowed.empty() && !allowed.count(s)) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail("'" + key + "' must be one of " + list + ", got '" + s + "'");
  }
  return s;
}
void ConfigReader::finish() const {
  for (auto it = j_.begin(); it != j_.end(); ++it)
    if (!used_.count(it.key())) fail("unknown key '" + it.key().substr(0, 60) + "'");
}

// ---- HSA ------------------------------------------------------------------------------------------------

namespace {
// JSON spellings of the enum switches, in enum order.
template <class E>
struct EnumNames;
#define LCTX_ENUM_NAMES(E, ...)                                   \
  template <>                                                     \
  struct EnumNames<E> {                                           \
    static const std::vector<std::string>& names() {              \
      static const std::vector<std::string> n = {__VA_ARGS__};    \
      return n;                                                   \
    }                                                             \
  };
LCTX_ENUM_NAMES(HsaLayout, "lctx", "paper")
LCTX_ENUM_NAMES(ChunkEncoderKind, "mean-pool", "encoder", "encoder+cls")
LCTX_ENUM_NAMES(HsaResidual, "bypass", "standard")
LCTX_ENUM_NAMES(SelectionSparsity, "enforced", "off")
LCTX_ENUM_NAMES(HsaGranularity, "token", "chunk")
LCTX_ENUM_NAMES(HsaFusion, "chunk", "joint")
LCTX_ENUM_NAMES(ChunkWeights, "softmax", "stick-breaking", "softmax1")
LCTX_ENUM_NAMES(HsaLower, "swa", "mamba")
LCTX_ENUM_NAMES(HsaInit, "scaled", "normal")
#undef LCTX_ENUM_NAMES

template <class E>
std::string name_of(E e) {
  return EnumNames<E>::names().at(static_cast<size_t>(e));
}
template <class E>
E read_enum(ConfigReader& r, const std::string& key, E def) {
  const auto& names = EnumNames<E>::names();
  auto v = r.get_string(key, name_of(def), std::set<std::string>(names.begin(), names.end()));
  return static_cast<E>(std::find(names.begin(), names.end(), v) - names.begin());
}
}  // namespace

HsaConfig HsaConfig::preset(const std::string& name) {
  HsaConfig c;
  if (name == "tiny") {
    c.d_model = 128; c.n_heads = 4; c.lower_layers = 2; c.upper_layers = 2; c.window = 128; c.chunk = 64;
    c.topk = 8; c.encoder_layers = 2;
  } else if (name == "small") {
    c.d_model = 384; c.n_heads = 6; c.lower_layers = 4; c.upper_layers = 4; c.window = 256; c.chunk = 64;
    c.topk = 8; c.encoder_layers = 2;
  } else if (name == "paper") {
    // The authors' SWA+HSA layout at a size that trains in minutes at 4096 tokens (docs/hsa.md).
    c.layout = HsaLayout::paper;
    c.d_model = 128; c.n_heads = 4; c.kv_heads = 1;
    c.lower_layers = 2; c.upper_groups = 2; c.group_swa_layers = 1; c.hsa_swa = false;
    c.window = 128; c.chunk = 64; c.topk = 8; c.train_topk = 8; c.encoder_layers = 2;
    c.chunk_encoder = ChunkEncoderKind::encoder_cls; c.residual = HsaResidual::bypass;
    // Chunk weights: the papers' softmax over the selected scores, with one zero logit so that a layer can
    // retrieve nothing. Stick-breaking (the authors' code default) never learned to copy at this size
    // (docs/training.md); it stays a key (assets/configs/hsa-paper-sb.json).
    c.selection_sparsity = SelectionSparsity::enforced; c.chunk_weights = ChunkWeights::softmax1;
    c.qk_norm = true; c.init = HsaInit::normal;
  } else {
    throw Error("hsa config: unknown preset '" + name + "' (tiny, small, paper)");
  }
  return c;
}

HsaConfig HsaConfig::from_json(const nlohmann::json& j) {
  ConfigReader r(j, "hsa config");
  if (r.get_string("kind", "hsa") != "hsa") r.fail("kind must be \"hsa\"");
  HsaConfig d = r.has("preset") ? preset(r.get_string("preset", "", {"tiny", "small", "paper"})) : HsaConfig();
  HsaConfig c;
  c.vocab = r.get_int("vocab", d.vocab, 2);
  c.d_model = r.get_int("d_model", d.d_model);
  c.n_heads = r.get_int("n_heads", d.n_heads);
  c.mlp_hidden = r.get_int("mlp_hidden", d.mlp_hidden, 0);
  c.layout = read_enum(r, "layout", d.layout);
  c.lower_layers = r.get_int("lower_layers", d.lower_layers, 0);
  c.lower = read_enum(r, "lower", d.lower);
  c.upper_layers = r.get_int("upper_layers", d.upper_layers);
  c.upper_groups = r.get_int("upper_groups", d.upper_groups);
  c.group_swa_layers = r.get_int("group_swa_layers", d.group_swa_layers, 0);
  c.hsa_swa = r.get_bool("hsa_swa", d.hsa_swa);
  c.kv_heads = r.get_int("kv_heads", d.kv_heads, 0);
  c.window = r.get_int("window", d.window);
  c.chunk = r.get_int("chunk", d.chunk, 2);
  c.topk = r.get_int("topk", d.topk);
  c.landmark_dim = r.get_int("landmark_dim", d.landmark_dim, 0);
  c.encoder_layers = r.get_int("encoder_layers", d.encoder_layers, 0);
  c.chunk_encoder = read_enum(r, "chunk_encoder", d.chunk_encoder);
  c.residual = read_enum(r, "residual", d.residual);
  c.selection_sparsity = read_enum(r, "selection_sparsity", d.selection_sparsity);
  c.sparsity_ratio = r.get_int("sparsity_ratio", d.sparsity_ratio);
  c.train_topk = r.get_int("train_topk", d.train_topk, 0);
  c.granularity = read_enum(r, "granularity", d.granularity);
  c.fusion = read_enum(r, "fusion", d.fusion);
  c.chunk_weights = read_enum(r, "chunk_weights", d.chunk_weights);
  c.chunk_softmax1 = r.get_bool("chunk_softmax1", d.chunk_softmax1);
  c.qk_norm = r.get_bool("qk_norm", d.qk_norm);
  c.init = read_enum(r, "init", d.init);
  c.token_shift = r.get_bool("token_shift", d.token_shift);
  c.token_shift_width = r.get_int("token_shift_width", d.token_shift_width, 1);
  if (c.token_shift_width > 8) throw Error("hsa config: token_shift_width must be in [1, 8]");
  c.key_shift = r.get_bool("key_shift", d.key_shift);
  c.selection_aux = r.get_double("selection_aux", d.selection_aux, 0.0);
  c.rope_base = r.get_double("rope_base", d.rope_base, 1.0);
  c.tie_embeddings = r.get_bool("tie_embeddings", d.tie_embeddings);
  c.prefill_block = r.get_int("prefill_block", d.prefill_block);
  r.finish();
  if (c.d_model % c.n_heads) r.fail("d_model must be a multiple of n_heads");
  if ((c.d_model / c.n_heads) % 2) r.fail("head dim (d_model / n_heads) must be even for RoPE");
  if (c.kv_heads > 0 && c.n_heads % c.kv_heads) r.fail("n_heads must be a multiple of kv_heads");
  if (c.chunk_encoder != ChunkEncoderKind::mean_pool && c.encoder_layers < 1)
    r.fail("chunk_encoder '" + name_of(c.chunk_encoder) + "' needs encoder_layers >= 1");
  if (c.selection_aux > 0 && c.granularity != HsaGranularity::token) r.fail("selection_aux needs granularity \"token\"");
  if (c.fusion == HsaFusion::joint && (c.chunk_weights != ChunkWeights::softmax || c.chunk_softmax1))
    r.fail("fusion \"joint\" has no chunk weights: it needs chunk_weights \"softmax\" and chunk_softmax1 false");
  if (c.layout == HsaLayout::paper && (c.token_shift || c.key_shift))
    r.fail("token_shift and key_shift are lctx-layout options");
  return c;
}

nlohmann::json HsaConfig::to_json() const {
  nlohmann::json j = {{"kind", "hsa"},
                      {"vocab", vocab},
                      {"d_model", d_model},
                      {"n_heads", n_heads},
                      {"mlp_hidden", mlp_hidden},
                      {"lower_layers", lower_layers},
                      {"upper_layers", upper_layers},
                      {"window", window},
                      {"chunk", chunk},
                      {"topk", topk},
                      {"landmark_dim", landmark_dim},
                      {"encoder_layers", encoder_layers},
                      {"chunk_encoder", name_of(chunk_encoder)},
                      {"residual", name_of(residual)},
                      {"selection_sparsity", name_of(selection_sparsity)},
                      {"sparsity_ratio", sparsity_ratio},
                      {"granularity", name_of(granularity)},
                      {"fusion", name_of(fusion)},
                      {"token_shift", token_shift},
                      {"token_shift_width", token_shift_width},
                      {"key_shift", key_shift},
                      {"selection_aux", selection_aux},
                      {"lower", name_of(lower)},
                      {"rope_base", rope_base},
                      {"tie_embeddings", tie_embeddings},
                      {"prefill_block", prefill_block},
                      {"layout", name_of(layout)},
                      {"upper_groups", upper_groups},
                      {"group_swa_layers", group_swa_layers},
                      {"hsa_swa", hsa_swa},
                      {"kv_heads", kv_heads},
                      {"train_topk", train_topk},
                      {"chunk_weights", name_of(chunk_weights)},
                      {"chunk_softmax1", chunk_softmax1},
                      {"qk_norm", qk_norm},
                      {"init", name_of(init)}};
  return j;
}

// ---- SWA ------------------------------------------------------------------------------------------------
SwaConfig SwaConfig::preset(const std::string& name) {
  SwaConfig c;
  if (name == "tiny") {
    c.d_model = 128; c.n_layers = 4; c.n_heads = 4; c.window = 256;
  } else if (name == "small") {
    c.d_model = 512; c.n_layers = 8; c.n_heads = 8; c.window = 512;
  } else {
    throw Error("swa config: unknown preset '" + name + "' (tiny, small)");
  }
  return c;
}

SwaConfig SwaConfig::from_json(const nlohmann::json& j) {
  ConfigReader r(j, "swa config");
  if (r.get_string("kind", "swa") != "swa") r.fail("kind must be \"swa\"");
  SwaConfig d = r.has("preset") ? preset(r.get_string("preset", "", {"tiny", "small"})) : SwaConfig();
  SwaConfig c;
  c.vocab = r.get_int("vocab", d.vocab, 2);
  c.d_model = r.get_int("d_model", d.d_model);
  c.n_layers = r.get_int("n_layers", d.n_layers);
  c.n_heads = r.get_int("n_heads", d.n_heads);
  c.window = r.get_int("window", d.window);
  c.mlp_hidden = r.get_int("mlp_hidden", d.mlp_hidden, 0);
  c.rope_base = r.get_double("rope_base", d.rope_base, 1.0);
  c.norm_eps = r.get_double("norm_eps", d.norm_eps, 0.0);
  c.tie_embeddings = r.get_bool("tie_embeddings", d.tie_embeddings);
  c.qk_norm = r.get_bool("qk_norm", d.qk_norm);
  c.prefill_block = r.get_int("prefill_block", d.prefill_block);
  r.finish();
  if (c.d_model % c.n_heads) r.fail("d_model must be a multiple of n_heads");
  if ((c.d_model / c.n_heads) % 2) r.fail("head dim (d_model / n_heads) must be even for RoPE");
  return c;
}

nlohmann::json SwaConfig::to_json() const {
  return {{"kind", "swa"},           {"vocab", vocab},       {"d_model", d_model},
          {"n_layers", n_layers},    {"n_heads", n_heads},   {"window", window},
          {"mlp_hidden", mlp_hidden}, {"rope_base", rope_base}, {"norm_eps", norm_eps},
          {"tie_embeddings", tie_embeddings}, {"prefill_block", prefill_block}, {"qk_norm", qk_norm}};
}

// ---- Mamba ----------------------------------------------------------------------------------------------
MambaConfig MambaConfig::preset(const std::string& name) {
  MambaConfig c;
  if (name == "tiny") {
    c.d_model = 128; c.n_layers = 8;
  } else if (name == "small") {
    c.d_model = 512; c.n_layers = 16;
  } else {
    throw Error("mamba config: unknown preset '" + name + "' (tiny, small)");
  }
  return c;
}

MambaConfig MambaConfig::from_json(const nlohmann::json& j) {
  ConfigReader r(j, "mamba config");
  if (r.get_string("kind", "mamba") != "mamba") r.fail("kind must be \"mamba\"");
  MambaConfig d = r.has("preset") ? preset(r.get_string("preset", "", {"tiny", "small"})) : MambaConfig();
  MambaConfig c;
  c.vocab = r.get_int("vocab", d.vocab, 2);
  c.d_model = r.get_int("d_model", d.d_model);
  c.n_layers = r.get_int("n_layers", d.n_layers);
  c.d_state = r.get_int("d_state", d.d_state);
  c.d_conv = r.get_int("d_conv", d.d_conv);
  c.expand = r.get_int("expand", d.expand);
  c.dt_rank = r.get_int("dt_rank", d.dt_rank, 0);
  c.dt_min = r.get_double("dt_min", d.dt_min, 1e-6);
  c.dt_max = r.get_double("dt_max", d.dt_max, 1e-6);
  c.norm_eps = r.get_double("norm_eps", d.norm_eps, 0.0);
  c.tie_embeddings = r.get_bool("tie_embeddings", d.tie_embeddings);
  c.scan_chunk = r.get_int("scan_chunk", d.scan_chunk);
  c.prefill_block = r.get_int("prefill_block", d.prefill_block);
  r.finish();
  if (c.dt_min > c.dt_max) r.fail("dt_min must be <= dt_max");
  return c;
}

nlohmann::json MambaConfig::to_json() const {
  return {{"kind", "mamba"},     {"vocab", vocab},     {"d_model", d_model},   {"n_layers", n_layers},
          {"d_state", d_state},  {"d_conv", d_conv},   {"expand", expand},     {"dt_rank", dt_rank},
          {"dt_min", dt_min},    {"dt_max", dt_max},   {"norm_eps", norm_eps}, {"tie_embeddings", tie_embeddings},
          {"scan_chunk", scan_chunk}, {"prefill_block", prefill_block}};
}

}  // namespace lctx::models
