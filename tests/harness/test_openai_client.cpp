// The OpenAI-compatible client against real loopback servers started here: retries with backoff on 5xx/429,
// timeouts, immediate failure on other 4xx, connection errors, request contents, chat.
#ifdef LCTX_HAVE_HTTPLIB
#include <httplib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

#include "harness/openai.hpp"
#include "tests/catch.hpp"
#include "tests/harness/matchers.hpp"
using lctx_harness_test::has;

using namespace lctx::harness;
using nlohmann::json;

namespace {

struct TestServer {
  httplib::Server svr;
  std::thread th;
  int port = 0;
  std::atomic<int> calls{0};
  std::vector<double> call_times;  // seconds since start, per call
  std::mutex mu;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  json last_request;
  std::string last_path;

  // handler(call number from 1, request json, response)
  void start(std::function<void(int, const json&, httplib::Response&)> h) {
    auto wrap = [this, h](const httplib::Request& req, httplib::Response& res) {
      int n = ++calls;
      {
        std::lock_guard<std::mutex> lock(mu);
        call_times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        last_request = json::parse(req.body, nullptr, false);
        last_path = req.path;
      }
      h(n, last_request, res);
    };
    svr.Post("/v1/completions", wrap);
    svr.Post("/v1/chat/completions", wrap);
    port = svr.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    th = std::thread([this] { svr.listen_after_bind(); });
    for (int i = 0; i < 500 && !svr.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port) + "/v1"; }
  ~TestServer() {
    svr.stop();
    if (th.joinable()) th.join();
  }
};

void ok_completion(httplib::Response& res, const std::string& text) {
  json j = {{"choices", json::array({json{{"index", 0}, {"text", text}, {"finish_reason", "stop"}}})},
            {"usage", {{"prompt_tokens", 11}, {"completion_tokens", 2}, {"total_tokens", 13}}}};
  res.set_content(j.dump(), "application/json");
}

OpenAIOptions opts(const std::string& base) {
  OpenAIOptions o;
  o.base_url = base;
  o.model = "test-model";
  o.timeout_s = 5;
  o.retries = 3;
  o.backoff_s = 0.05;
  o.api_key = "sk-test";
  return o;
}

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST_CASE("client: greedy request, parsed answer") {
  TestServer s;
  s.start([](int, const json&, httplib::Response& res) { ok_completion(res, " 42"); });
  OpenAIClient c(opts(s.base()));
  CHECK(c.endpoint() == s.base() + "/completions");
  auto out = c.complete("What is six times seven?", 7);
  CHECK(out.text == " 42");
  CHECK(out.attempts == 1);
  CHECK(out.completion_tokens == 2);
  REQUIRE(out.server_prompt_tokens);
  CHECK(*out.server_prompt_tokens == 11);
  CHECK(out.finish_reason == "stop");
  CHECK(!out.decode_s);
  CHECK(s.last_path == "/v1/completions");
  CHECK(s.last_request["prompt"] == "What is six times seven?");
  CHECK(s.last_request["max_tokens"] == 7);
  CHECK(s.last_request["temperature"] == 0);
  CHECK(s.last_request["model"] == "test-model");
}

TEST_CASE("client: 5xx twice, then success; exponential backoff between attempts") {
  TestServer s;
  s.start([](int n, const json&, httplib::Response& res) {
    if (n <= 2) {
      res.status = 500;
      res.set_content("{\"error\":\"overloaded\"}", "application/json");
    } else {
      ok_completion(res, "fine");
    }
  });
  OpenAIClient c(opts(s.base()));
  auto out = c.complete("p", 4);
  CHECK(out.text == "fine");
  CHECK(out.attempts == 3);
  REQUIRE(s.calls == 3);
  // waits: 0.05 s before the 2nd attempt, 0.10 s before the 3rd
  CHECK(s.call_times[1] - s.call_times[0] >= 0.045);
  CHECK(s.call_times[2] - s.call_times[1] >= 0.095);
  CHECK(s.call_times[2] - s.call_times[1] < 2.0);
}

TEST_CASE("client: 429 is retried too") {
  TestServer s;
  s.start([](int n, const json&, httplib::Response& res) {
    if (n == 1) {
      res.status = 429;
      res.set_content("slow down", "text/plain");
    } else {
      ok_completion(res, "ok");
    }
  });
  OpenAIClient c(opts(s.base()));
  CHECK(c.complete("p", 4).attempts == 2);
}

TEST_CASE("client: persistent 5xx gives up with the status, body and attempt count") {
  TestServer s;
  s.start([](int, const json&, httplib::Response& res) {
    res.status = 503;
    res.set_content("backend down\nline two", "text/plain");
  });
  auto o = opts(s.base());
  o.retries = 2;
  OpenAIClient c(o);
  REQUIRE_THROWS_AS(c.complete("p", 4), HttpError);
  CHECK(s.calls == 3);
  REQUIRE_THROWS_WITH(c.complete("p", 4), lctx_test::Contains("HTTP 503: backend down line two") &&
                                              lctx_test::Contains("gave up after 3 attempts") &&
                                              lctx_test::Contains(s.base() + "/completions"));
}

TEST_CASE("client: other 4xx fail at once") {
  TestServer s;
  s.start([](int, const json&, httplib::Response& res) {
    res.status = 400;
    res.set_content("{\"error\":{\"message\":\"max_tokens too large\"}}", "application/json");
  });
  OpenAIClient c(opts(s.base()));
  REQUIRE_THROWS_WITH(c.complete("p", 4), lctx_test::Contains("HTTP 400") &&
                                              lctx_test::Contains("max_tokens too large"));
  CHECK(s.calls == 1);
}

TEST_CASE("client: a server slower than the timeout is retried, then reported") {
  TestServer s;
  s.start([](int, const json&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    ok_completion(res, "late");
  });
  auto o = opts(s.base());
  o.timeout_s = 0.3;
  o.retries = 1;
  OpenAIClient c(o);
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE_THROWS_WITH(c.complete("p", 4), lctx_test::Contains("timeout") &&
                                              lctx_test::Contains("gave up after 2 attempts"));
  double wall = since(t0);
  CHECK(wall >= 0.6);   // two attempts of 0.3 s
  CHECK(wall < 2.0);    // did not wait for the 1.2 s answers
  CHECK(s.calls == 2);
}

TEST_CASE("client: a slow but in-time answer succeeds") {
  TestServer s;
  s.start([](int, const json&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ok_completion(res, "slow");
  });
  auto o = opts(s.base());
  o.timeout_s = 2;
  OpenAIClient c(o);
  auto out = c.complete("p", 4);
  CHECK(out.text == "slow");
  CHECK(out.prefill_s >= 0.19);
}

TEST_CASE("client: nobody listening") {
  // A port that was free a moment ago, now closed: bind a socket to port 0, read the port, close it.
  int port = 0;
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    ::close(fd);
  }
  auto o = opts("http://127.0.0.1:" + std::to_string(port) + "/v1");
  o.retries = 1;
  o.backoff_s = 0.01;
  OpenAIClient c(o);
  REQUIRE_THROWS_WITH(c.complete("p", 4), lctx_test::Contains("gave up after 2 attempts"));
}

TEST_CASE("client: chat completions") {
  TestServer s;
  s.start([](int, const json& req, httplib::Response& res) {
    json j = {{"choices", json::array({json{{"index", 0},
                                            {"message", {{"role", "assistant"}, {"content", "Paris"}}},
                                            {"finish_reason", "stop"}}})}};
    res.set_content(j.dump(), "application/json");
  });
  auto o = opts(s.base());
  o.chat = true;
  OpenAIClient c(o);
  CHECK(c.complete("Capital of France?", 3).text == "Paris");
  CHECK(s.last_path == "/v1/chat/completions");
  CHECK(s.last_request["messages"][0]["role"] == "user");
  CHECK(s.last_request["messages"][0]["content"] == "Capital of France?");
}

TEST_CASE("client: malformed answers and bad URLs are clear errors") {
  TestServer s;
  s.start([](int, const json&, httplib::Response& res) { res.set_content("{\"nope\":1}", "application/json"); });
  OpenAIClient c(opts(s.base()));
  REQUIRE_THROWS_WITH(c.complete("p", 4), lctx_test::Contains("not an OpenAI completion"));
  REQUIRE_THROWS_WITH(OpenAIClient(opts("https://api.example.com/v1")), lctx_test::Contains("https"));
  REQUIRE_THROWS_WITH(OpenAIClient(opts("localhost:80")), lctx_test::Contains("http://"));
}

#endif  // LCTX_HAVE_HTTPLIB
