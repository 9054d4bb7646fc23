#include "harness/openai.hpp"
#include "tasks/sample.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#ifdef LCTX_HAVE_HTTPLIB
#include <httplib.h>
#endif

namespace lctx::harness {

using nlohmann::json;

static std::string one_line(std::string s, size_t max = 300) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (s.size() > max) s = s.substr(0, max) + "...";
  return s;
}

static std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", s);
  return buf;
}

#ifdef LCTX_HAVE_HTTPLIB
namespace {
// Calls `on_deadline` once after `seconds` unless destroyed first.
class Watchdog {
 public:
  Watchdog(double seconds, std::function<void()> on_deadline) {
    thread_ = std::thread([this, seconds, f = std::move(on_deadline)] {
      std::unique_lock<std::mutex> lk(mu_);
      if (!cv_.wait_for(lk, std::chrono::duration<double>(seconds), [this] { return done_; })) {
        fired_ = true;
        f();
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  bool fired() {
    std::lock_guard<std::mutex> lk(mu_);
    return fired_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false, fired_ = false;
  std::thread thread_;
};
}  // namespace
#endif

OpenAIClient::OpenAIClient(OpenAIOptions opt) : opt_(std::move(opt)) {
  const std::string& u = opt_.base_url;
  if (u.rfind("https://", 0) == 0)
    throw Error("openai model URL " + u + ": https is not supported (plain http only; use a local proxy)");
  if (u.rfind("http://", 0) != 0) throw Error("openai model URL '" + u + "' must start with http://");
  auto slash = u.find('/', 7);
  scheme_host_port_ = slash == std::string::npos ? u : u.substr(0, slash);
  path_prefix_ = slash == std::string::npos ? "" : u.substr(slash);
  while (!path_prefix_.empty() && path_prefix_.back() == '/') path_prefix_.pop_back();
  if (scheme_host_port_.size() <= 7) throw Error("openai model URL '" + u + "' has no host");
  if (!(opt_.timeout_s > 0) || opt_.timeout_s > 86400) throw Error("--timeout must be in (0, 86400] seconds");
  if (opt_.retries < 0 || opt_.retries > 100) throw Error("--retries must be in [0, 100]");
  if (!(opt_.backoff_s >= 0) || opt_.backoff_s > 3600) throw Error("--backoff must be in [0, 3600] seconds");
  if (opt_.api_key.empty())
    if (const char* k = std::getenv("OPENAI_API_KEY")) opt_.api_key = k;
}

std::string OpenAIClient::endpoint() const {
  return scheme_host_port_ + path_prefix_ + (opt_.chat ? "/chat/completions" : "/completions");
}

#ifdef LCTX_HAVE_HTTPLIB

Completion OpenAIClient::complete(const std::string& prompt, int max_new) const {
  json req;
  if (!opt_.model.empty()) req["model"] = opt_.model;
  if (opt_.chat)
    req["messages"] = json::array({json{{"role", "user"}, {"content", prompt}}});
  else
    req["prompt"] = prompt;
  req["max_tokens"] = max_new;
  req["temperature"] = 0;
  req["top_p"] = 1;
  req["n"] = 1;
  req["stream"] = false;
  const std::string body = req.dump(-1, ' ', false, json::error_handler_t::replace);
  const std::string path = path_prefix_ + (opt_.chat ? "/chat/completions" : "/completions");

  auto sec = static_cast<time_t>(opt_.timeout_s);
  auto usec = static_cast<time_t>((opt_.timeout_s - static_cast<double>(sec)) * 1e6);
  httplib::Headers headers;
  if (!opt_.api_key.empty()) headers.emplace("Authorization", "Bearer " + opt_.api_key);

  std::string last_error;
  const int attempts = opt_.retries + 1;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    if (attempt > 1) {
      double wait = std::min(opt_.max_backoff_s, opt_.backoff_s * std::pow(2.0, attempt - 2));
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
    httplib::Client cli(scheme_host_port_);
    cli.set_connection_timeout(sec, usec);
    cli.set_read_timeout(sec, usec);
    cli.set_write_timeout(sec, usec);
    cli.set_keep_alive(false);
    auto t0 = std::chrono::steady_clock::now();
    httplib::Result res{nullptr, httplib::Error::Unknown};
    bool deadline_hit = false;
    {
      // --timeout bounds the whole attempt, not each read: a server trickling bytes is cut off at the deadline
      // (httplib's timeouts apply per socket operation). The watchdog shuts the socket down, failing the Post.
      Watchdog dog(opt_.timeout_s, [&cli] { cli.stop(); });
      res = cli.Post(path.c_str(), headers, body, "application/json");
      deadline_hit = dog.fired();
    }
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!res) {
      auto err = res.error();
      const bool timed_out = deadline_hit || err == httplib::Error::ConnectionTimeout ||
                             (err == httplib::Error::Read && wall >= 0.95 * opt_.timeout_s);
      if (timed_out)
        last_error = "no complete answer within the " + seconds_text(opt_.timeout_s) + " s timeout";
      else if (err == httplib::Error::Read)
        last_error = "the server closed or reset the connection before a complete answer (after " +
                     seconds_text(wall) + " s)";
      else if (err == httplib::Error::Write)
        last_error = "the server closed or reset the connection while the request was sent";
      else if (err == httplib::Error::Connection)
        last_error = "cannot connect to " + scheme_host_port_ + " (connection refused or host unreachable)";
      else
        last_error = httplib::to_string(err);
      continue;  // timeouts and connection errors are retried
    }
    int status = res->status;
    if (status == 429 || status >= 500) {
      last_error = "HTTP " + std::to_string(status) + ": " + one_line(res->body);
      continue;
    }
    if (status < 200 || status >= 300)
      throw HttpError("POST " + endpoint() + ": HTTP " + std::to_string(status) + ": " + one_line(res->body));
    auto j = json::parse(res->body, nullptr, false);
    if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() || j["choices"].empty())
      throw HttpError("POST " + endpoint() + ": the answer is not an OpenAI completion: " + one_line(res->body));
    const json& c = j["choices"][0];
    Completion out;
    if (opt_.chat) {
      if (!c.contains("message") || !c["message"].contains("content") || !c["message"]["content"].is_string())
        throw HttpError("POST " + endpoint() + ": no choices[0].message.content in the answer");
      out.text = c["message"]["content"].get<std::string>();
    } else {
      if (!c.contains("text") || !c["text"].is_string())
        throw HttpError("POST " + endpoint() + ": no choices[0].text in the answer");
      out.text = c["text"].get<std::string>();
    }
    if (c.contains("finish_reason") && c["finish_reason"].is_string())
      out.finish_reason = c["finish_reason"].get<std::string>();
    if (j.contains("usage") && j["usage"].is_object()) {
      const json& u = j["usage"];
      // Token counts are kept only when they are counts; anything else (negative, fractional, absurd) is not
      // recorded, with one warning per client.
      auto count = [&](const char* k) -> std::optional<int64_t> {
        if (!u.contains(k) || u[k].is_null()) return std::nullopt;
        if ((u[k].is_number_unsigned() && u[k].get<uint64_t>() < (uint64_t(1) << 53)) ||
            (u[k].is_number_integer() && !u[k].is_number_unsigned() && u[k].get<int64_t>() >= 0))
          return u[k].get<int64_t>();
        if (!warned_usage_.exchange(true))
          std::fprintf(stderr, "lctx: warning: POST %s: usage.%s %s is not a token count; it is not recorded\n",
                       endpoint().c_str(), k, one_line(u[k].dump(), 40).c_str());
        return std::nullopt;
      };
      if (auto v = count("completion_tokens")) out.completion_tokens = *v;
      out.server_prompt_tokens = count("prompt_tokens");
    }
    out.prefill_s = wall;
    out.attempts = attempt;
    return out;
  }
  throw HttpError("POST " + endpoint() + ": " + last_error + " (gave up after " + std::to_string(attempts) +
                  (attempts == 1 ? " attempt)" : " attempts)"));
}

#else

Completion OpenAIClient::complete(const std::string&, int) const {
  throw HttpError("this lctx was built without cpp-httplib: openai: models are unavailable");
}

#endif

Completion OpenAIClient::complete(const Sample& sample, int max_new) {
  return complete(sample.prompt_text(), max_new);
}

}  // namespace lctx::harness
