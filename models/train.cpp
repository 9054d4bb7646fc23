// Trainer: see train.hpp. Mixed precision: on CUDA the forward runs under LibTorch's autocast with bf16
// (the C++ autocast API differs between LibTorch 1.13 and 2.4+; the two spellings are below). Weights,
// gradients and AdamW state stay fp32 throughout (autocast casts per op), so no separate master copy exists.
#include "models/train.hpp"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"
#include "models/profile.hpp"
#include "models/torch_compat.hpp"

namespace lctx::models {
namespace {

struct AutocastGuard {
  bool on;
  explicit AutocastGuard(bool enable) : on(enable) { if (on) compat::set_autocast_cuda_bf16(true); }
  ~AutocastGuard() { if (on) compat::set_autocast_cuda_bf16(false); }
};

torch::Device model_device(Model& m) {
  for (const auto& p : m.parameters()) return p.device();
  return torch::Device(torch::kCPU);
}

std::string join_path(const std::string& dir, const char* name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

}  // namespace

void check_train_options(const TrainOptions& o) {
  auto finite_in = [](double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; };
  if (o.steps < 1 || o.steps > 1000000000) throw Error("train: --steps must be in [1, 1e9]");
  if (o.batch < 1 || o.batch > 1000000) throw Error("train: --batch must be in [1, 1e6]");
  if (!finite_in(o.lr, 0, 10) || o.lr == 0) throw Error("train: --lr must be a finite number in (0, 10]");
  if (!finite_in(o.min_lr, 0, o.lr)) throw Error("train: --min-lr must be in [0, lr]");
  if (o.warmup < 0 || o.warmup > 1000000000) throw Error("train: --warmup must be in [0, 1e9]");
  if (!finite_in(o.weight_decay, 0, 10)) throw Error("train: --weight-decay must be a finite number in [0, 10]");
  if (!finite_in(o.clip, 0, 1e9)) throw Error("train: --clip must be a finite number >= 0 (0: off)");
  if (o.save_every < 0) throw Error("train: --save-every must be >= 0");
  if (o.log_every < 0) throw Error("train: --log-every must be >= 0");
  if (o.precision != "auto" && o.precision != "fp32" && o.precision != "bf16")
    throw Error("train: precision must be auto, fp32 or bf16 (got '" + o.precision + "')");
  if (o.resume && o.out_dir.empty()) throw Error("train: --resume needs --out");
  if (o.full_selection_steps < 0) throw Error("train: --full-selection-steps must be >= 0");
  if (o.topk_anneal_steps < 0) throw Error("train: --topk-anneal-steps must be >= 0");
  if (!std::isfinite(o.time_limit_s) || o.time_limit_s < 0) throw Error("train: --time-limit must be >= 0 seconds");
  if (o.resume && o.force) throw Error("train: --resume and --force exclude each other");
  if (!o.resume && !o.force && !o.out_dir.empty()) {
    // A fresh run never overwrites a trained model, its trainer state or its log without being told to.
    std::string held;
    for (const char* name : {"model.safetensors", "config.json", kTrainerState, kTrainLog}) {
      std::error_code ec;
      const auto p = join_path(o.out_dir, name);
      if (std::filesystem::exists(p, ec) && !(std::string(name) == kTrainLog && std::filesystem::file_size(p, ec) == 0))
        held += (held.empty() ? "" : ", ") + std::string(name);
    }
    if (!held.empty())
      throw Error("train: " + o.out_dir + " already holds a trained model (" + held +
                  "); pass --resume to continue it, --force to overwrite it, or use another --out");
  }
}

namespace {

// Named tensors of the model that the state file carries (parameters and buffers).
std::vector<std::pair<std::string, torch::Tensor>> model_tensors(Model& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& kv : m.named_parameters()) out.emplace_back("p." + kv.key(), kv.value());
  for (const auto& kv : m.named_buffers()) out.emplace_back("b." + kv.key(), kv.value());
  return out;
}

// What the state file carries besides weights, optimizer and RNG: counters summed over segments.
struct Progress {
  int64_t step = 0, tokens = 0;
  int64_t tokens_full = 0;     // tokens of the steps trained with full selection (the warm-up)
  double train_seconds = 0;    // training time of all finished segments
  int64_t segments = 0;        // segments before this one
};

void save_state(const std::string& path, Model& model, torch::optim::Optimizer& optim, const Progress& pr) {
  torch::serialize::OutputArchive ar;
  ar.write("step", torch::tensor(pr.step, torch::kInt64));
  ar.write("tokens", torch::tensor(pr.tokens, torch::kInt64));
  ar.write("tokens_full", torch::tensor(pr.tokens_full, torch::kInt64));
  ar.write("train_seconds", torch::tensor(pr.train_seconds, torch::kFloat64));
  ar.write("segments", torch::tensor(pr.segments, torch::kInt64));
  torch::serialize::OutputArchive mar;
  for (auto& [name, t] : model_tensors(model)) mar.write(name, t.detach().cpu(), /*is_buffer=*/true);
  ar.write("model", mar);
  torch::serialize::OutputArchive oar;
  optim.save(oar);
  ar.write("optimizer", oar);
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    ar.write("rng_cpu", gen.get_state(), true);
  }
  if (torch::cuda::is_available()) {
    auto gen = at::globalContext().defaultGenerator(c10::DeviceType::CUDA);
    std::lock_guard<std::mutex> lock(gen.mutex());
    ar.write("rng_cuda", gen.get_state(), true);
  }
  const std::string tmp = path + ".tmp";
  ar.save_to(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw Error("cannot write " + path);
}

void load_state(const std::string& path, Model& model, torch::optim::Optimizer& optim, Progress& pr) {
  if (!file_exists(path)) throw Error("train: --resume: no " + path);
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(path);
    torch::Tensor t_step, t_tokens;  // read() into a defined tensor would try to resize its storage
    ar.read("step", t_step);
    pr.step = t_step.item<int64_t>();
    ar.read("tokens", t_tokens);
    pr.tokens = t_tokens.item<int64_t>();
    torch::Tensor t_extra;  // absent in states written before segmented runs
    if (ar.try_read("tokens_full", t_extra)) pr.tokens_full = t_extra.item<int64_t>();
    t_extra = torch::Tensor();
    if (ar.try_read("train_seconds", t_extra)) pr.train_seconds = t_extra.item<double>();
    t_extra = torch::Tensor();
    pr.segments = ar.try_read("segments", t_extra) ? t_extra.item<int64_t>() : 1;
    torch::serialize::InputArchive mar;
    ar.read("model", mar);
    torch::NoGradGuard ng;
    for (auto& [name, dst] : model_tensors(model)) {
      torch::Tensor src;
      mar.read(name, src, true);
      if (src.sizes() != dst.sizes())
        throw Error("train: --resume: " + name + " has another shape in " + path);
      dst.copy_(src);
    }
    torch::serialize::InputArchive oar;
    ar.read("optimizer", oar);
    optim.load(oar);
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      torch::Tensor t;
      ar.read("rng_cpu", t, true);
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(t);
    }
    torch::Tensor tc;
    if (torch::cuda::is_available() && ar.try_read("rng_cuda", tc, true)) {
      auto gen = at::globalContext().defaultGenerator(c10::DeviceType::CUDA);
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(tc);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    throw Error("train: --resume: cannot read " + path + ": " + msg);
  }
}

// Keeps the log lines of steps <= `step` (a resumed run redoes the steps after the last save).
void trim_log(const std::string& path, int64_t step) {
  if (!file_exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("step") || !j["step"].is_number_integer() ||
        j["step"].get<int64_t>() > step)
      continue;
    kept += line + "\n";
  }
  in.close();
  write_file_atomic(path, kept);
}

}  // namespace

double lr_at(const TrainOptions& o, int64_t step) {
  if (o.warmup > 0 && step < o.warmup) return o.lr * double(step + 1) / double(o.warmup);
  const int64_t decay = o.steps - 1 - o.warmup;
  if (decay <= 0) return o.lr;
  double t = double(step - o.warmup) / double(decay);
  t = std::min(1.0, std::max(0.0, t));
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + std::cos(M_PI * t));
}

torch::Tensor batch_loss(Model& model, const Batch& b) {
  if (!b.tokens.defined() || b.tokens.dim() != 2 || b.tokens.size(1) < 2)
    throw Error("train: batch tokens must be [B, T+1] with T >= 1");
  const int64_t B = b.tokens.size(0), T = b.tokens.size(1) - 1;
  if (!b.weight.defined() || b.weight.sizes() != torch::IntArrayRef({B, T}))
    throw Error("train: batch weight must be [B, T]");
  const auto dev = model_device(model);
  auto tokens = b.tokens.to(dev, torch::kInt64);
  auto inputs = tokens.narrow(1, 0, T);
  auto targets = tokens.narrow(1, 1, T).reshape({-1});
  auto hidden = model.forward_hidden(inputs);
  hidden = hidden.reshape({-1, hidden.size(-1)});
  auto w = b.weight.to(dev, torch::kFloat32).reshape({-1});
  // The head (the [.., D] x [D, V] matmul) only where the loss weight is non-zero. The rows are found on the
  // host copy of the weights when there is one, so the step never waits for the device here.
  auto keep = (b.weight.is_cuda() ? w : b.weight.reshape({-1})).gt(0).nonzero().reshape({-1}).to(dev);
  if (keep.size(0) == 0) return (hidden.sum() * 0.0).to(torch::kFloat32);  // keeps the graph, loss 0
  auto logits = model.head(hidden.index_select(0, keep)).to(torch::kFloat32);
  auto nll = torch::nn::functional::cross_entropy(
      logits, targets.index_select(0, keep), torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  auto wk = w.index_select(0, keep);
  return (nll * wk).sum() / wk.sum();
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& params, const TrainOptions& opt) {
  // Decoupled weight decay on matrices only (norm gains, biases and other vectors: none).
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : params) {
    if (!p.requires_grad()) continue;
    (p.dim() >= 2 ? decay : no_decay).push_back(p);
  }
  auto base = torch::optim::AdamWOptions(opt.lr)
                  .betas(std::make_tuple(opt.beta1, opt.beta2))
                  .eps(opt.eps)
                  .weight_decay(opt.weight_decay);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(base));
  auto nd = base;
  nd.weight_decay(0.0);
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(nd));
  return std::make_unique<torch::optim::AdamW>(std::move(groups), base);
}

torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return torch::zeros({}, torch::kFloat32);
  torch::NoGradGuard ng;
#if LCTX_TORCH_AT_LEAST(2, 1)
  auto norms = at::_foreach_norm(grads, 2);
#else
  std::vector<torch::Tensor> norms;
  for (const auto& g : grads) norms.push_back(g.norm());
#endif
  auto total = torch::stack(norms).to(torch::kFloat32).norm();
  if (max_norm > 0) {
    auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
#if LCTX_TORCH_AT_LEAST(2, 1)
    at::_foreach_mul_(grads, coef);
#else
    for (auto& g : grads) g.mul_(coef);
#endif
  }
  return total;
}

bool adamw_step_fused(torch::optim::AdamW& optim) {
#if LCTX_TORCH_AT_LEAST(2, 1)
  // Every parameter with a gradient: same device (CUDA), fp32, dense, and one common step count.
  int64_t step = -1;
  for (auto& g : optim.param_groups())
    for (auto& p : g.params()) {
      if (!p.grad().defined()) continue;
      if (!p.is_cuda() || p.scalar_type() != torch::kFloat32 || p.grad().is_sparse()) return false;
      auto it = optim.state().find(p.unsafeGetTensorImpl());
      const int64_t s = it == optim.state().end() ? 0 : static_cast<torch::optim::AdamWParamState&>(*it->second).step();
      if (step >= 0 && s != step) return false;
      step = s;
      if (static_cast<torch::optim::AdamWOptions&>(g.options()).amsgrad()) return false;
    }
  if (step < 0) return true;  // no gradients: nothing to do
  torch::NoGradGuard ng;
  torch::Tensor step_t;
  for (auto& g : optim.param_groups()) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(g.options());
    std::vector<torch::Tensor> ps, gs, m1, m2, steps;
    for (auto& p : g.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = optim.state()[p.unsafeGetTensorImpl()];
      if (!slot) {
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(0);
        st->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        st->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(st);
      }
      auto& st = static_cast<torch::optim::AdamWParamState&>(*slot);
      st.step(step + 1);
      if (!step_t.defined()) step_t = torch::full({}, double(step + 1), p.options().dtype(torch::kFloat32));
      ps.push_back(p);
      gs.push_back(p.grad());
      m1.push_back(st.exp_avg());
      m2.push_back(st.exp_avg_sq());
      steps.push_back(step_t);
    }
    if (ps.empty()) continue;
    const std::vector<torch::Tensor> none;  // max_exp_avg_sqs: amsgrad is off
    at::_fused_adamw_(ps, gs, m1, m2, none, steps, o.lr(), std::get<0>(o.betas()),
                      std::get<1>(o.betas()), o.weight_decay(), o.eps(), /*amsgrad=*/false, /*maximize=*/false);
  }
  return true;
#else
  (void)optim;
  return false;
#endif
}

TrainResult train(Model& model, const BatchSource& source, const TrainOptions& opt,
                  const std::function<void(const StepLog&)>& on_step) {
  check_train_options(opt);
  const auto dev = model_device(model);
  const bool bf16 = opt.precision == "bf16" || (opt.precision == "auto" && dev.is_cuda());
  if (bf16 && !dev.is_cuda()) throw Error("train: bf16 autocast is supported on CUDA only (use fp32 on CPU)");

  auto optim_ptr = make_adamw(model.parameters(), opt);
  auto& optim = *optim_ptr;

  Progress pr;
  const std::string state_path = opt.out_dir.empty() ? "" : join_path(opt.out_dir, kTrainerState);
  const std::string log_path = opt.out_dir.empty() ? "" : join_path(opt.out_dir, kTrainLog);
  if (!opt.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(opt.out_dir, ec);
    if (ec || !std::filesystem::is_directory(opt.out_dir)) throw Error("cannot create " + opt.out_dir);
  }
  if (opt.resume) {
    load_state(state_path, model, optim, pr);
    trim_log(log_path, pr.step);
    if (!opt.quiet) std::cerr << "train: resumed at step " << pr.step << " from " << state_path << "\n";
  } else {
    torch::manual_seed(opt.seed);
  }
  // A fresh run replaces the log at its first step, so a run that fails before it leaves the old log whole.
  std::ofstream log;
  bool log_pending = !log_path.empty();
  auto open_log = [&] {
    log_pending = false;
    log.open(log_path, opt.resume ? std::ios::app : std::ios::trunc);
    if (!log) throw Error("cannot write " + log_path);
  };

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  auto seconds_now = [&] { return std::chrono::duration<double>(clock::now() - t0).count(); };
  // Counters of this segment are added to those of the finished segments when saved.
  auto save_all = [&](int64_t s) {
    if (opt.out_dir.empty()) return;
    Progress now = pr;
    now.step = s;
    now.train_seconds = pr.train_seconds + seconds_now();
    now.segments = pr.segments + 1;
    if (opt.save_model) {
      auto extra = opt.extra_config;
      if (!extra.is_object()) extra = nlohmann::json::object();
      if (!extra.contains("train") || !extra["train"].is_object()) extra["train"] = nlohmann::json::object();
      auto& tr = extra["train"];
      tr["steps_done"] = s;
      tr["tokens_seen"] = pr.tokens;
      tr["complete"] = s >= opt.steps;
      tr["train_seconds"] = std::round(now.train_seconds * 10) / 10;
      tr["segments"] = now.segments;
      if (opt.full_selection_steps > 0)
        tr["selection_warmup"] = {{"steps", opt.full_selection_steps},
                                  {"description", "every visible chunk selected (top-k = all), then the "
                                                  "configured training top-k"},
                                  {"topk_anneal_steps", opt.topk_anneal_steps},
                                  {"tokens_full_selection", pr.tokens_full},
                                  {"tokens_sparse_selection", pr.tokens - pr.tokens_full}};
      save_checkpoint(opt.out_dir, model, extra);
    }
    save_state(state_path, model, optim, now);
  };

  const bool was_training = model.is_training();
  model.train(true);
  int64_t step = pr.step;
  const int64_t tokens0 = pr.tokens, step0 = pr.step;
  TrainResult res;
  res.steps_done = step;
  double window_loss = 0, window_aux = 0;
  int window_n = 0;
  const auto params = model.parameters();
  // CUDA: the next batch is built on a second host thread while the device runs this step, and a step's
  // loss and gradient norm are read back (a device synchronisation) only after the next step is queued.
  // CPU: in order, since the host is the device.
  const bool overlap = dev.is_cuda();
  std::future<Batch> next;
  auto fetch = [&](int64_t s) {
    if (overlap) next = std::async(std::launch::async, [&source, s, n = opt.batch] { return source(s, n); });
  };
  struct Pending {
    int64_t step = 0;
    torch::Tensor loss, aux, gnorm;
    double lr = 0;
    int64_t tokens = 0;
  };
  std::optional<Pending> pending;
  std::vector<StepLog> logged;
  auto flush = [&] {  // logs the pending step (reads its loss from the device)
    if (!pending) return;
    Pending P = std::move(*pending);
    pending.reset();
    profile::Scope ps("t_readback", dev);
    StepLog L;
    L.step = P.step;
    L.loss = P.loss.item<double>();
    if (P.aux.defined()) L.aux = P.aux.item<double>();
    if (!std::isfinite(L.loss)) throw Error("train: loss is not finite at step " + std::to_string(L.step));
    L.lr = P.lr;
    L.grad_norm = P.gnorm.item<double>();
    L.tokens = P.tokens;
    L.elapsed_s = std::chrono::duration<double>(clock::now() - t0).count();
    L.tokens_per_s = L.elapsed_s > 0 ? double(P.tokens - tokens0) / L.elapsed_s : 0;
    if (log_pending) open_log();
    if (log.is_open()) {
      nlohmann::json j = {{"step", L.step},       {"loss", L.loss},         {"lr", L.lr},
                          {"grad_norm", L.grad_norm}, {"tokens", L.tokens}, {"tokens_per_s", L.tokens_per_s},
                          {"elapsed_s", L.elapsed_s}};
      if (P.aux.defined()) j["aux"] = L.aux;
      log << j.dump() << "\n";
      log.flush();
    }
    window_loss += L.loss;
    window_aux += L.aux;
    ++window_n;
    if (!opt.quiet && (L.step % std::max<int64_t>(1, opt.log_every) == 0 || L.step == opt.steps)) {
      char buf[256];
      std::snprintf(buf, sizeof buf, "step %lld/%lld  loss %.4f  lr %.2e  gnorm %.3f  %.0f tok/s  %.1fs",
                    (long long)L.step, (long long)opt.steps, window_loss / window_n, L.lr, L.grad_norm,
                    L.tokens_per_s, L.elapsed_s);
      std::cerr << buf;
      if (P.aux.defined()) {
        std::snprintf(buf, sizeof buf, "  aux %.4f", window_aux / window_n);
        std::cerr << buf;
      }
      std::cerr << "\n" << std::flush;
      window_loss = 0;
      window_aux = 0;
      window_n = 0;
    }
    res.last_loss = L.loss;
    res.steps_done = L.step;
    logged.push_back(L);
  };
  auto notify = [&] {  // the caller's callback, after the step's log line and any save
    for (const auto& L : logged)
      if (on_step) on_step(L);
    logged.clear();
  };
  if (step < opt.steps) fetch(step);
  for (; step < opt.steps; ++step) {
    if (opt.time_limit_s > 0 && step > step0) {  // stop before a step that would end past the budget
      const double el = seconds_now();
      if (el + el / double(step - step0) > opt.time_limit_s) {
        res.complete = false;
        break;
      }
    }
    const double lr = lr_at(opt, step);
    for (auto& g : optim.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    const bool full = step < opt.full_selection_steps;
    model.set_full_selection(full);
    {
      const int64_t a = step - opt.full_selection_steps;  // steps into the anneal
      model.set_selection_fraction(a >= 0 && a < opt.topk_anneal_steps
                                       ? 1.0 - double(a) / double(opt.topk_anneal_steps)
                                       : 0.0);
    }
    Batch b;
    {
      profile::Scope ps("t_batch", dev);
      b = overlap ? next.get() : source(step, opt.batch);
    }
    if (step + 1 < opt.steps) fetch(step + 1);
    torch::Tensor loss, aux;
    {
      profile::Scope ps("t_forward", dev);
      AutocastGuard ac(bf16);
      loss = batch_loss(model, b);
      aux = model.auxiliary_loss();
    }
    {
      profile::Scope ps("t_backward", dev);
      optim.zero_grad();
      (aux.defined() ? loss + aux : loss).backward();
    }
    torch::Tensor gnorm;
    {
      profile::Scope ps("t_clip", dev);
      gnorm = clip_grad_norm(params, opt.clip);
    }
    {
      profile::Scope ps("t_optimizer", dev);
      if (!adamw_step_fused(optim)) optim.step();
    }
    const int64_t step_tokens = b.tokens.size(0) * (b.tokens.size(1) - 1);
    pr.tokens += step_tokens;
    if (full) pr.tokens_full += step_tokens;
    flush();  // the previous step (this one is queued behind it)
    pending = Pending{step + 1, loss.detach(), aux.defined() ? aux.detach() : aux, gnorm, lr, pr.tokens};
    if (!overlap) flush();
    if (opt.save_every > 0 && (step + 1) % opt.save_every == 0 && step + 1 != opt.steps) {
      flush();
      save_all(step + 1);
    }
    notify();
  }
  flush();
  notify();
  if (overlap && next.valid()) next.wait();  // a batch fetched for a step past the time limit
  model.set_full_selection(false);
  model.set_selection_fraction(0.0);
  if (!res.complete && !opt.quiet)
    std::cerr << "train: time limit " << opt.time_limit_s << " s reached after step " << res.steps_done << " of "
              << opt.steps << "; saved (continue with --resume)\n";
  save_all(res.steps_done);
  model.train(was_training);
  res.elapsed_s = seconds_now();
  res.tokens_per_s = res.elapsed_s > 0 ? double(pr.tokens - tokens0) / res.elapsed_s : 0;
  res.train_seconds = pr.train_seconds + res.elapsed_s;
  res.segments = pr.segments + 1;
  return res;
}

}  // namespace lctx::models
