#include "harness/serve.hpp"

#include <atomic>
#include <chrono>
#include <ctime>

#include <sys/socket.h>

#include <nlohmann/json.hpp>

#ifdef LCTX_HAVE_HTTPLIB
#include <httplib.h>
#endif

#include "core/error.hpp"

namespace lctx::harness {

using nlohmann::json;

#ifdef LCTX_HAVE_HTTPLIB

namespace {

struct BadRequest : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void send_error(httplib::Response& res, int status, const std::string& msg, const std::string& type) {
  res.status = status;
  json j = {{"error", {{"message", msg}, {"type", type}, {"code", status}}}};
  res.set_content(j.dump(), "application/json");
}

int max_tokens_of(const json& req, const ServeOptions& opt) {
  const char* field = req.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (!req.contains(field) || req[field].is_null()) return opt.default_max_tokens;
  if (!req[field].is_number_integer()) throw BadRequest(std::string(field) + " must be an integer");
  auto v = req[field].get<int64_t>();
  if (v < 0 || v > opt.max_tokens_limit)
    throw BadRequest(std::string(field) + " must be in [0, " + std::to_string(opt.max_tokens_limit) + "]");
  return static_cast<int>(v);
}

std::vector<std::string> stops_of(const json& req) {
  std::vector<std::string> s;
  if (!req.contains("stop") || req["stop"].is_null()) return s;
  if (req["stop"].is_string()) {
    s.push_back(req["stop"].get<std::string>());
  } else if (req["stop"].is_array()) {
    for (auto& x : req["stop"]) {
      if (!x.is_string()) throw BadRequest("stop must be a string or an array of strings");
      s.push_back(x.get<std::string>());
    }
  } else {
    throw BadRequest("stop must be a string or an array of strings");
  }
  return s;
}

// Cuts the text at the first stop string; returns true when one was found.
bool apply_stops(std::string& text, const std::vector<std::string>& stops) {
  size_t cut = std::string::npos;
  for (auto& s : stops)
    if (!s.empty()) cut = std::min(cut, text.find(s));
  if (cut == std::string::npos) return false;
  text.resize(cut);
  return true;
}

std::string content_text(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {  // [{"type":"text","text":...}, ...]
    std::string s;
    for (auto& part : content)
      if (part.is_object() && part.value("type", "") == "text" && part.contains("text") && part["text"].is_string())
        s += part["text"].get<std::string>();
    return s;
  }
  if (content.is_null()) return "";
  throw BadRequest("message content must be a string or an array of text parts");
}

}  // namespace

void serve(BuiltinModel& model, const ServeOptions& opt, const std::function<void(int)>& on_ready) {
  if (opt.max_tokens_limit < 1 || opt.max_tokens_limit > (1 << 20))
    throw Error("--max-tokens-limit must be in [1, 1048576] (got " + std::to_string(opt.max_tokens_limit) + ")");
  if (opt.port < 0 || opt.port > 65535) throw Error("--port must be in [0, 65535]");
  httplib::Server svr;
  std::atomic<int64_t> counter{0};
  const std::string name = model.name();

  auto run = [&](const std::vector<int32_t>& ids, int max_new, const std::vector<std::string>& stops,
                 json& usage) -> std::pair<std::string, std::string> {
    Completion c = model.complete(ids, max_new);
    std::string reason = c.finish_reason;
    if (apply_stops(c.text, stops)) reason = "stop";
    usage = {{"prompt_tokens", static_cast<int64_t>(ids.size())},
             {"completion_tokens", c.completion_tokens},
             {"total_tokens", static_cast<int64_t>(ids.size()) + c.completion_tokens}};
    return {c.text, reason};
  };

  auto guarded = [&](auto&& body) {
    return [&, body](const httplib::Request& req, httplib::Response& res) {
      try {
        auto j = json::parse(req.body, nullptr, false);
        if (!j.is_object()) throw BadRequest("the request body is not a JSON object");
        body(j, res);
      } catch (const BadRequest& e) {
        send_error(res, 400, e.what(), "invalid_request_error");
      } catch (const std::exception& e) {
        send_error(res, 500, e.what(), "server_error");
      }
    };
  };

  svr.Post("/v1/completions", guarded([&](const json& req, httplib::Response& res) {
             if (!req.contains("prompt")) throw BadRequest("missing prompt");
             const json& p = req["prompt"];
             std::vector<int32_t> ids;
             if (p.is_string()) {
               ids = model.tokenizer().encode_long(p.get<std::string>());
             } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
               ids = model.tokenizer().encode_long(p[0].get<std::string>());
             } else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {
               for (auto& x : p) {
                 if (!x.is_number_integer()) throw BadRequest("prompt token ids must be integers");
                 auto v = x.get<int64_t>();
                 if (v < 0 || v >= model.tokenizer().vocab_size()) throw BadRequest("prompt token id out of range");
                 ids.push_back(static_cast<int32_t>(v));
               }
             } else {
               throw BadRequest("prompt must be a string, [string] or a list of token ids (one prompt per request)");
             }
             if (ids.empty()) throw BadRequest("empty prompt");
             json usage;
             auto [text, reason] = run(ids, max_tokens_of(req, opt), stops_of(req), usage);
             json out = {{"id", "cmpl-" + std::to_string(++counter)},
                         {"object", "text_completion"},
                         {"created", static_cast<int64_t>(std::time(nullptr))},
                         {"model", req.value("model", name)},
                         {"choices", json::array({json{{"index", 0}, {"text", text}, {"logprobs", nullptr},
                                                       {"finish_reason", reason}}})},
                         {"usage", usage}};
             res.set_content(out.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
           }));

  svr.Post("/v1/chat/completions", guarded([&](const json& req, httplib::Response& res) {
             if (!req.contains("messages") || !req["messages"].is_array() || req["messages"].empty())
               throw BadRequest("messages must be a non-empty array");
             // The built-in models have no chat template: the prompt is the messages' contents, one per line.
             std::string prompt;
             for (auto& m : req["messages"]) {
               if (!m.is_object() || !m.contains("content")) throw BadRequest("each message needs a content");
               if (!prompt.empty()) prompt += "\n";
               prompt += content_text(m["content"]);
             }
             auto ids = model.tokenizer().encode_long(prompt);
             if (ids.empty()) throw BadRequest("empty prompt");
             json usage;
             auto [text, reason] = run(ids, max_tokens_of(req, opt), stops_of(req), usage);
             json out = {{"id", "chatcmpl-" + std::to_string(++counter)},
                         {"object", "chat.completion"},
                         {"created", static_cast<int64_t>(std::time(nullptr))},
                         {"model", req.value("model", name)},
                         {"choices", json::array({json{{"index", 0},
                                                       {"message", {{"role", "assistant"}, {"content", text}}},
                                                       {"finish_reason", reason}}})},
                         {"usage", usage}};
             res.set_content(out.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
           }));

  svr.Get("/v1/models", [&](const httplib::Request&, httplib::Response& res) {
    json out = {{"object", "list"},
                {"data", json::array({json{{"id", name}, {"object", "model"}, {"owned_by", "lctx"},
                                           {"kind", model.config().value("arch", json::object()).value("kind", "")}}})}};
    res.set_content(out.dump(), "application/json");
  });
  svr.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg;
    switch (res.status) {
      case 404: msg = "not found: " + req.method + " " + req.path.substr(0, 100) +
                      " (endpoints: POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health)";
        break;
      case 413:
        msg = "request body too large for its Content-Type '" + req.get_header_value("Content-Type").substr(0, 60) +
              "' (form-encoded bodies, curl -d's default, are limited to 8 KB): send the JSON with "
              "-H 'Content-Type: application/json'";
        break;
      case 400: msg = "malformed HTTP request"; break;
      default: msg = "HTTP " + std::to_string(res.status);
    }
    send_error(res, res.status, msg, "invalid_request_error");
  });
  // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, with which a second server on a busy port
  // starts and the kernel splits the requests between the two.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof(yes));
  });

  int port = opt.port;
  if (port == 0) {
    port = svr.bind_to_any_port(opt.host);
    if (port <= 0) throw Error("cannot listen on " + opt.host + " (any port)");
  } else if (!svr.bind_to_port(opt.host.c_str(), port)) {
    throw Error("cannot listen on " + opt.host + ":" + std::to_string(port) +
                " (the port is in use by another server, or the address is not local)");
  }
  if (on_ready) on_ready(port);
  svr.listen_after_bind();
}

#else

void serve(BuiltinModel&, const ServeOptions&, const std::function<void(int)>&) {
  throw Error("this lctx was built without cpp-httplib: `lctx serve` is unavailable");
}

#endif

}  // namespace lctx::harness
