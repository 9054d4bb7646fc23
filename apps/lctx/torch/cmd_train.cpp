// `lctx train`: trains a built-in model (any kind of models::model_kinds()) on the lctx data mixture (harness/train_data)
// with the trainer of models/train. `lctx train-eval`: greedy-generation accuracy of a checkpoint on
// held-out samples of one task (the needle bar of docs/training.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "apps/lctx/command.hpp"
#include "apps/lctx/options.hpp"
#include "apps/lctx/torch/options.hpp"
#include "harness/run.hpp"
#include "harness/train_data.hpp"
#include "models/model.hpp"
#include "models/train.hpp"
#include "core/error.hpp"
#include "core/lengths.hpp"
#include "core/files.hpp"
#include "tasks/catalog.hpp"
#include "tasks/metrics.hpp"

namespace {

struct TrainOpts {
  std::string arch, preset = "tiny", config_file, mix = "niah:1", out, tokenizer,
      haystack, precision = "auto", init_from, loss_norm = "token";
  std::vector<int64_t> lengths;  // empty: the context
  c10::Device device = c10::Device(c10::kCPU);
  int64_t context = 512, steps = 1000, batch = 8, warmup = 100, save_every = 0, log_every = 10,
          full_selection_steps = 0, topk_anneal_steps = 0;
  double lr = 1e-3, min_lr = 1e-4, weight_decay = 0.1, clip = 1.0, prompt_weight = 0.0, time_limit = 0;
  uint64_t seed = 1;
  int threads = 0;
  bool resume = false, force = false;
};

// The keys of --config (a JSON object of architecture keys, or a checkpoint's config.json), {} without one.
nlohmann::json config_keys(const TrainOpts& o) {
  if (o.config_file.empty()) return nlohmann::json::object();
  auto j = nlohmann::json::parse(lctx::read_file(o.config_file), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw lctx::Error("--config " + o.config_file + ": not a JSON object");
  if (j.contains("arch")) j = j["arch"];  // a checkpoint config.json works too
  if (!j.is_object()) throw lctx::Error("--config " + o.config_file + ": \"arch\" is not an object");
  if (j.contains("kind") && j["kind"] != o.arch)
    throw lctx::Error("--config " + o.config_file + ": kind " + j["kind"].dump() + " differs from --arch " + o.arch);
  return j;
}

// The architecture to train: the preset's, or with --init-from the checkpoint's, with `override` (the keys of
// --config) on top.
nlohmann::json arch_config(const TrainOpts& o, const nlohmann::json& override) {
  const auto kinds = lctx::models::model_kinds();
  if (std::find(kinds.begin(), kinds.end(), o.arch) == kinds.end())
    throw lctx::Error("--arch must be " + lctx::cli::model_kind_phrase() + " (got '" + o.arch + "')");
  if (!o.init_from.empty()) {  // the architecture is the starting checkpoint's (--config: keys to override)
    const std::string p = o.init_from + "/config.json";
    if (!lctx::file_exists(p)) throw lctx::Error("--init-from " + o.init_from + ": no config.json there");
    auto j = nlohmann::json::parse(lctx::read_file(p), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("arch") || !j["arch"].is_object())
      throw lctx::Error("--init-from " + p + ": not a checkpoint config (no \"arch\" object)");
    if (j["arch"].value("kind", "") != o.arch)
      throw lctx::Error("--init-from " + o.init_from + ": checkpoint kind " + j["arch"].value("kind", "?") +
                        " differs from --arch " + o.arch);
    auto arch = j["arch"];
    arch.update(override);
    return arch;
  }
  if (o.preset != "tiny" && o.preset != "small")
    throw lctx::Error("--preset must be tiny or small (got '" + o.preset + "')");
  nlohmann::json arch = {{"kind", o.arch}, {"preset", o.preset}};
  arch.update(override);
  return arch;
}

lctx::cli::Command train_cmd("train", [](CLI::App& app) {
  auto o = std::make_shared<TrainOpts>();
  app.add_option("--arch", o->arch, lctx::cli::model_kind_list())->required();
  app.add_option("--preset", o->preset, "tiny | small (architecture preset)")->capture_default_str();
  app.add_option("--config", o->config_file,
                 "JSON file with architecture keys overriding the preset (with --init-from: overriding the "
                 "checkpoint's; weight shapes must not change, e.g. {\"selection_aux\": 0.5})");
  lctx::cli::add_int(app, "--context", o->context, 16, int64_t(1) << 26, "training context T (tokens per row)");
  lctx::cli::add_lengths(app, o->lengths, "task sample lengths (CSV, each <= context; default: context)");
  app.add_option("--mix", o->mix, "data mixture NAME:WEIGHT,... (corpus, copy, copy-wide, niah, niah1, vt, babi, ruler/<task>, babilong/<task>)")
      ->capture_default_str();
  lctx::cli::add_number(app, "--prompt-weight", o->prompt_weight, 0, 1e6, "loss weight of task prompt tokens (answer tokens: 1)");
  app.add_option("--loss-norm", o->loss_norm,
                 "token (every supervised token weighs the same) | row (every row weighs the same)")
      ->capture_default_str();
  app.add_option("--steps", o->steps, "optimizer steps")->capture_default_str();
  app.add_option("--batch", o->batch, "rows per step")->capture_default_str();
  app.add_option("--lr", o->lr, "peak learning rate")->capture_default_str();
  app.add_option("--warmup", o->warmup, "linear warmup steps")->capture_default_str();
  app.add_option("--min-lr", o->min_lr, "cosine floor")->capture_default_str();
  app.add_option("--weight-decay", o->weight_decay, "AdamW weight decay (matrices only)")->capture_default_str();
  app.add_option("--clip", o->clip, "gradient norm clip (0: off)")->capture_default_str();
  lctx::cli::add_seed(app, o->seed, "seed (init, data, noise)");
  lctx::cli::add_device(app, o->device);
  app.add_option("--precision", o->precision, "auto (bf16 autocast on CUDA) | fp32 | bf16")->capture_default_str();
  app.add_option("--save-every", o->save_every, "checkpoint every N steps (0: at the end only)")->capture_default_str();
  app.add_option("--log-every", o->log_every, "stderr progress every N steps")->capture_default_str();
  lctx::cli::add_int(app, "--threads", o->threads, 0, lctx::cli::kMaxThreads, "torch CPU threads (0: all cores)");
  lctx::cli::add_tokenizer(app, o->tokenizer);
  lctx::cli::add_haystack(app, o->haystack);
  app.add_option("--out", o->out, "output folder (checkpoint, trainer_state.pt, train_log.jsonl)")->required();
  app.add_flag("--resume", o->resume, "continue from OUT/trainer_state.pt");
  app.add_option("--full-selection-steps", o->full_selection_steps,
                 "selection warm-up: the first N steps select every visible chunk (HSA top-k covers the "
                 "sequence), then the configured training top-k (other models: no effect)")
      ->capture_default_str();
  app.add_option("--topk-anneal-steps", o->topk_anneal_steps,
                 "after the selection warm-up, N steps over which the share of visible chunks selected falls "
                 "linearly from all to the configured training top-k (HSA; other models: no effect)")
      ->capture_default_str();
  app.add_option("--time-limit", o->time_limit,
                 "seconds of training in this invocation (0: none); when the next step would pass it, save the "
                 "checkpoint and trainer state and exit 0 (continue with --resume)")
      ->capture_default_str();
  app.add_flag("--force", o->force, "start afresh even when OUT holds a trained model (overwrites it)");
  app.add_option("--init-from", o->init_from,
                 "start from this checkpoint's weights and architecture (fresh optimizer and schedule; a second "
                 "training stage, e.g. longer context after a short-context curriculum)");
  return [o]() -> int {
    const auto override = config_keys(*o);
    const auto arch = arch_config(*o, override);  // validates arch/preset before any loading
    lctx::harness::parse_mix(o->mix);    // validates the mixture early
    lctx::models::TrainOptions t;
    t.steps = o->steps;
    t.batch = o->batch;
    t.lr = o->lr;
    t.warmup = o->warmup;
    t.min_lr = o->min_lr;
    t.weight_decay = o->weight_decay;
    t.clip = o->clip;
    t.seed = o->seed;
    t.precision = o->precision;
    t.save_every = o->save_every;
    t.log_every = o->log_every;
    t.out_dir = o->out;
    t.resume = o->resume;
    t.full_selection_steps = o->full_selection_steps;
    t.topk_anneal_steps = o->topk_anneal_steps;
    t.time_limit_s = o->time_limit;
    t.force = o->force;
    // Bad numbers and an --out holding a trained model are refused before anything is loaded, printed or written.
    lctx::models::check_train_options(t);
    const auto device = o->device;
    lctx::models::configure_cpu_threads(o->threads);

    lctx::harness::TrainDataOptions dopt;
    dopt.mix = o->mix;
    dopt.context = o->context;
    dopt.lengths = o->lengths;
    dopt.seed = o->seed;
    dopt.prompt_weight = o->prompt_weight;
    dopt.loss_norm = o->loss_norm;
    dopt.tokenizer = o->tokenizer;
    dopt.haystack_dir = o->haystack;
    auto res = lctx::load_resources(o->tokenizer, o->haystack);
    lctx::harness::TrainData data(dopt, res);

    torch::manual_seed(o->seed);  // model initialisation
    std::shared_ptr<lctx::models::Model> model;
    nlohmann::json init_from;
    if (o->init_from.empty()) {
      model = lctx::models::build_model(arch);
    } else {
      auto ck = lctx::models::load_checkpoint(o->init_from, res.tokenizer->hash(), torch::Device(torch::kCPU),
                                              override);
      model = ck.model;
      init_from = {{"path", o->init_from}, {"fingerprint", lctx::harness::checkpoint_fingerprint(o->init_from)}};
      if (ck.config.contains("train")) init_from["train"] = ck.config["train"];
    }
    if (model->vocab_size() < res.tokenizer->vocab_size())
      throw lctx::Error("model vocab " + std::to_string(model->vocab_size()) + " < tokenizer vocab " +
                        std::to_string(res.tokenizer->vocab_size()));
    model->to(device);

    nlohmann::json recipe = {{"arch", o->arch},          {"preset", o->preset},   {"steps", o->steps},
                             {"batch", o->batch},        {"lr", o->lr},           {"warmup", o->warmup},
                             {"min_lr", o->min_lr},      {"weight_decay", o->weight_decay},
                             {"clip", o->clip},          {"seed", o->seed},       {"device", o->device.str()},
                             {"precision", o->precision}, {"data", data.describe()}};
    if (o->full_selection_steps > 0) recipe["full_selection_steps"] = o->full_selection_steps;
    if (o->topk_anneal_steps > 0) recipe["topk_anneal_steps"] = o->topk_anneal_steps;
    if (!init_from.is_null()) recipe["init_from"] = init_from;
    t.extra_config = {{"tokenizer_hash", res.tokenizer->hash()}, {"train", recipe}};
    if (o->resume) {  // the folder must hold a run of the same model and data
      const std::string cfg_path = o->out + "/config.json";
      if (lctx::file_exists(cfg_path)) {
        auto old = nlohmann::json::parse(lctx::read_file(cfg_path), nullptr, false);
        if (!old.is_discarded() && old.contains("train") && old["train"].contains("data") &&
            (old["train"]["data"] != recipe["data"] || old["train"].value("batch", o->batch) != o->batch ||
             old["train"].value("arch", o->arch) != o->arch ||
             old["train"].value("full_selection_steps", int64_t(0)) != o->full_selection_steps ||
             old["train"].value("topk_anneal_steps", int64_t(0)) != o->topk_anneal_steps))
          throw lctx::Error("--resume: " + o->out +
                            " holds a run with another arch, batch, selection warm-up or data mixture");
      }
    }
    int64_t params = 0;
    for (const auto& p : model->parameters()) params += p.numel();
    std::fprintf(stderr, "train: %s/%s, %.2fM parameters, context %lld, batch %lld, %lld steps, mix %s, device %s\n",
                 o->arch.c_str(), o->preset.c_str(), params / 1e6, (long long)o->context, (long long)o->batch,
                 (long long)o->steps, o->mix.c_str(), o->device.str().c_str());
    auto r = lctx::models::train(*model, data.source(), t);
    std::printf("%s\n", nlohmann::json({{"steps", r.steps_done},
                                        {"of", o->steps},
                                        {"complete", r.complete},
                                        {"loss", r.last_loss},
                                        {"elapsed_s", r.elapsed_s},
                                        {"train_seconds", r.train_seconds},
                                        {"segments", r.segments},
                                        {"tokens_per_s", r.tokens_per_s},
                                        {"parameters", params},
                                        {"out", o->out}})
                            .dump()
                            .c_str());
    return 0;
  };
});

struct EvalOpts {
  std::string checkpoint, suite = "ruler", task, tokenizer, haystack, out;
  int64_t length = 512;
  int64_t samples = 50, index0 = 0;
  uint64_t seed = 7;
  int max_new = 0, threads = 0;
  lctx::harness::BuiltinOptions run;  // --device, --block (0: the checkpoint's prefill_block), prefill, precision
};

lctx::cli::Command eval_cmd("train-eval", [](CLI::App& app) {
  auto o = std::make_shared<EvalOpts>();
  app.add_option("--checkpoint", o->checkpoint, "checkpoint folder")->required();
  lctx::cli::add_suite(app, o->suite);
  app.add_option("--task", o->task, "task name (default: the first task of the suite's catalogue)");
  app.add_option_function<std::string>(
      "--length", [o](const std::string& s) { o->length = lctx::parse_length(s); }, "sample length (e.g. 512, 4k; default 512)");
  lctx::cli::add_int(app, "--samples", o->samples, 1, lctx::cli::kMaxSamples, "number of samples");
  lctx::cli::add_int(app, "--first-index", o->index0, 0, int64_t(1) << 53, "index of the first sample");
  lctx::cli::add_seed(app, o->seed, "evaluation run seed (< 2^63; training seeds carry bit 63)");
  lctx::cli::add_int(app, "--max-new", o->max_new, 0, 1 << 20, "generated tokens per sample (0: min(task's, 32))");
  lctx::cli::add_builtin_options(app, o->run, "0: the checkpoint's prefill_block");
  lctx::cli::add_int(app, "--threads", o->threads, 0, lctx::cli::kMaxThreads, "torch CPU threads (0: all cores)");
  lctx::cli::add_tokenizer(app, o->tokenizer);
  lctx::cli::add_haystack(app, o->haystack);
  app.add_option("--out", o->out, "write per-sample predictions (JSONL) here");
  return [o]() -> int {
    if (lctx::harness::is_training_seed(o->seed))
      throw lctx::Error("--seed has bit 63 set: that range is reserved for training samples");
    if (o->samples < 1) throw lctx::Error("--samples must be >= 1");
    const int64_t length = o->length;
    const auto device = o->run.device;
    lctx::models::configure_cpu_threads(o->threads);
    auto res = lctx::load_resources(o->tokenizer, o->haystack);
    lctx::GenOptions g;
    g.seed = o->seed;
    g.keep_ids = true;
    g.haystack_dir = o->haystack;
    if (o->task.empty()) o->task = lctx::suite_info(o->suite).tasks.front().name;
    auto gen = lctx::make_generator(o->suite, o->task, res, g);
    auto ck = lctx::models::load_checkpoint(o->checkpoint, res.tokenizer->hash(), device);
    auto& model = *ck.model;
    model.eval();
    torch::NoGradGuard ng;
    std::string preds;
    double score = 0, exact = 0;
    const auto t0 = std::chrono::steady_clock::now();
    bool ran_pruned = false;
    for (int64_t i = 0; i < o->samples; ++i) {
      auto s = gen->generate(length, o->index0 + i);
      std::vector<int64_t> ids(s.prompt_ids.begin(), s.prompt_ids.end());
      lctx::models::StreamOptions so;
      so.prune = o->run.prune;
      so.kv_offload = o->run.kv_offload;
      so.precision = o->run.precision;
      so.block = o->run.block;
      auto st = model.begin(so);
      auto logits = model.prefill(*st, torch::tensor(ids, torch::kInt64).to(device));
      ran_pruned = st->pruned;
      const int max_new = o->max_new > 0 ? o->max_new : std::min(s.tokens_to_generate, 32);
      auto out = model.generate(*st, logits, max_new, res.tokenizer->eos_id());
      std::string pred = res.tokenizer->decode(out);
      const auto refs = s.target.empty() ? s.outputs : std::vector<std::string>{s.target};
      double sc = lctx::score_prediction(s.metric, pred, refs, s.question, s.task);
      std::string trimmed = lctx::ruler_postprocess(pred);
      std::string ref_join;
      for (size_t k = 0; k < refs.size(); ++k) ref_join += (k ? ", " : "") + refs[k];
      const bool ex = trimmed == ref_join;
      score += sc;
      exact += ex;
      if (!o->out.empty())
        preds += nlohmann::json({{"index", s.index}, {"pred", pred}, {"refs", refs}, {"score", sc}, {"exact", ex},
                                 {"depth", s.meta.value("depth", nlohmann::json())}})
                     .dump() +
                 "\n";
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!o->out.empty()) lctx::write_file_atomic(o->out, preds);
    std::printf("%s\n", nlohmann::json({{"checkpoint", o->checkpoint},
                                        {"suite", o->suite},
                                        {"task", o->task},
                                        {"length", length},
                                        {"samples", o->samples},
                                        {"seed", o->seed},
                                        {"accuracy", score / o->samples},
                                        {"exact", exact / o->samples},
                                        {"prefill_path", ran_pruned ? "pruned" : "full"},
                                        {"seconds", secs}})
                            .dump()
                            .c_str());
    return 0;
  };
});

}  // namespace
