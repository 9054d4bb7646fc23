// Faults and hostile input around the harness: servers that trickle, drop, reset or cut their answers short,
// servers that report nonsense usage; `lctx serve` on a busy port and with curl's form-encoded bodies;
// `lctx train` into a folder that holds a trained model and with nonsense options; checkpoints whose
// config.json or weights are broken; the results store's repair of a last record that lacks its newline.
// Each case is a one-line error naming the problem (non-zero exit for the binary), or a correct success.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "harness/builtin.hpp"
#include "harness/openai.hpp"
#include "harness/results.hpp"
#include "models/checkpoint.hpp"
#include "models/model.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/paths.hpp"
#include "tasks/tokenizer.hpp"
#include "tests/catch.hpp"
#include "tests/one_line_error.hpp"
#include "tests/harness/matchers.hpp"
#include "tests/harness/proc.hpp"

#ifdef LCTX_HAVE_HTTPLIB
#include <httplib.h>
#endif

using lctx_harness_test::has;
using lctx_test::Proc;
using lctx_test::read_text;
using lctx_test::run_cmd;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using lctx_test::check_one_line_error;

const std::string& root() {
  static std::string r = lctx_harness_test::temp_dir("faults");
  return r;
}

void put(const std::string& f, const std::string& text) {
  fs::create_directories(fs::path(f).parent_path());
  std::ofstream(f, std::ios::binary) << text;
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A tiny untrained SWA checkpoint with the default tokenizer's hash (deterministic weights).
std::string make_checkpoint(const std::string& name) {
  const std::string dir = root() + "/" + name;
  torch::manual_seed(77);
  auto m = lctx::models::build_model(
      json{{"kind", "swa"}, {"preset", "tiny"}, {"d_model", 32}, {"n_layers", 1}, {"n_heads", 2}, {"window", 32}});
  auto tok = lctx::Tokenizer::load(lctx::default_tokenizer_path());
  lctx::models::save_checkpoint(dir, *m, json{{"tokenizer_hash", tok->hash()}});
  return dir;
}

// A loopback TCP server that runs `behave(fd)` on each accepted connection (raw bytes, no HTTP library).
struct RawServer {
  int lfd = -1, port = 0;
  std::thread th;
  std::atomic<bool> stop{false};
  explicit RawServer(std::function<void(int)> behave) {
    lfd = ::socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    REQUIRE(::listen(lfd, 8) == 0);
    th = std::thread([this, behave] {
      while (!stop) {
        int fd = ::accept(lfd, nullptr, nullptr);
        if (fd < 0) return;
        if (stop) {
          ::close(fd);
          return;
        }
        behave(fd);
      }
    });
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port) + "/v1"; }
  ~RawServer() {
    stop = true;
    ::shutdown(lfd, SHUT_RDWR);
    ::close(lfd);
    th.join();
  }
};

// Reads the request head and body (Content-Length) of one HTTP request.
void read_request(int fd) {
  std::string got;
  char buf[4096];
  size_t want = std::string::npos;
  while (got.size() < want) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    got.append(buf, static_cast<size_t>(n));
    auto h = got.find("\r\n\r\n");
    if (h != std::string::npos && want == std::string::npos) {
      auto p = got.find("Content-Length: ");
      size_t body = p == std::string::npos ? 0 : std::stoul(got.substr(p + 16));
      want = h + 4 + body;
    }
  }
}

const std::string kAnswer = "{\"choices\":[{\"index\":0,\"text\":\"ok\",\"finish_reason\":\"stop\"}]}";

lctx::harness::OpenAIOptions client_opts(const std::string& base, double timeout) {
  lctx::harness::OpenAIOptions o;
  o.base_url = base;
  o.model = "m";
  o.timeout_s = timeout;
  o.retries = 0;
  return o;
}

}  // namespace

#ifdef LCTX_HAVE_HTTPLIB

TEST_CASE("client: --timeout bounds the whole request; a server trickling 1 byte per interval is cut off",
          "[faults]") {
  RawServer s([](int fd) {
    read_request(fd);
    const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                             std::to_string(kAnswer.size()) + "\r\n\r\n" + kAnswer;
    for (char c : resp) {  // far slower than the timeout in total, never idle longer than 0.25 s
      if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    ::close(fd);
  });
  lctx::harness::OpenAIClient c(client_opts(s.base(), 1.5));
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE_THROWS_WITH(c.complete("p", 4), has("no complete answer within the 1.5 s timeout"));
  const double wall = since(t0);
  CHECK(wall >= 1.4);
  CHECK(wall < 3.0);
}

TEST_CASE("client: a server that drops, resets or cuts the body short is reported as such, not as a timeout",
          "[faults]") {
  SECTION("closes without answering") {
    RawServer s([](int fd) {
      read_request(fd);
      ::close(fd);
    });
    lctx::harness::OpenAIClient c(client_opts(s.base(), 5));
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE_THROWS_WITH(c.complete("p", 4), has("closed or reset the connection before a complete answer"));
    CHECK(since(t0) < 2.0);
  }
  SECTION("resets the connection") {
    RawServer s([](int fd) {
      read_request(fd);
      linger l{1, 0};  // close with RST
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      ::close(fd);
    });
    lctx::harness::OpenAIClient c(client_opts(s.base(), 5));
    REQUIRE_THROWS_WITH(c.complete("p", 4), has("closed or reset the connection"));
  }
  SECTION("sends a body shorter than its Content-Length") {
    RawServer s([](int fd) {
      read_request(fd);
      const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n" +
                               kAnswer.substr(0, 20);
      ::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL);
      ::close(fd);
    });
    lctx::harness::OpenAIClient c(client_opts(s.base(), 5));
    REQUIRE_THROWS_WITH(c.complete("p", 4), has("closed or reset the connection before a complete answer") &&
                                                !has("timeout"));
  }
}

TEST_CASE("client: usage token counts that are not counts are not recorded", "[faults]") {
  RawServer s([](int fd) {
    read_request(fd);
    const std::string body =
        "{\"choices\":[{\"index\":0,\"text\":\"ok\",\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":2.5}}";
    const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                             "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    ::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL);
    ::close(fd);
  });
  lctx::harness::OpenAIClient c(client_opts(s.base(), 5));
  auto out = c.complete("p", 4);
  CHECK(out.text == "ok");
  CHECK(!out.server_prompt_tokens.has_value());
  CHECK(out.completion_tokens == -1);
}

TEST_CASE("client: nonsense --timeout, --retries and --backoff are refused", "[faults]") {
  auto o = client_opts("http://127.0.0.1:9/v1", 5);
  o.backoff_s = -1;
  REQUIRE_THROWS_WITH(lctx::harness::OpenAIClient(o), has("--backoff must be in [0, 3600]"));
  o = client_opts("http://127.0.0.1:9/v1", std::numeric_limits<double>::infinity());
  REQUIRE_THROWS_WITH(lctx::harness::OpenAIClient(o), has("--timeout must be in (0, 86400]"));
  o = client_opts("http://127.0.0.1:9/v1", 5);
  o.retries = -1;
  REQUIRE_THROWS_WITH(lctx::harness::OpenAIClient(o), has("--retries must be in [0, 100]"));
}

namespace {
// Starts `lctx serve` on `port` (0: any); returns the URL once it prints it, "" if it exited.
std::string start_serve(Proc& p, const std::string& ck, int port, const std::string& tag) {
  p = Proc::spawn({lctx_test::lctx_bin(), "serve", "--model", "swa:" + ck, "--port", std::to_string(port)},
                  root() + "/" + tag + ".out", root() + "/" + tag + ".err");
  for (int i = 0; i < 3000 && p.running(); ++i) {
    auto s = read_text(root() + "/" + tag + ".out");
    auto a = s.find("http://");
    auto e = s.find('\n', a == std::string::npos ? 0 : a);
    if (a != std::string::npos && e != std::string::npos) return s.substr(a, e - a);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return "";
}
}  // namespace

TEST_CASE("serve: a second server on a busy port is refused; form-encoded bodies get a correct answer or message",
          "[faults]") {
  const std::string ck = make_checkpoint("serve-ck");
  Proc first;
  const std::string url = start_serve(first, ck, 0, "serve1");
  INFO(read_text(root() + "/serve1.err"));
  REQUIRE(!url.empty());
  const int port = std::stoi(url.substr(url.rfind(':') + 1));
  Proc second;
  CHECK(start_serve(second, ck, port, "serve2").empty());
  CHECK(second.wait() == 1);
  check_one_line_error(1, read_text(root() + "/serve2.err"), "cannot listen on 127.0.0.1:" + std::to_string(port));

  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(60, 0);
  // curl -d's default content type with a small JSON body: answered as JSON.
  auto small = cli.Post("/v1/completions", "{\"prompt\": \"The capital of France is\", \"max_tokens\": 3}",
                        "application/x-www-form-urlencoded");
  REQUIRE(small);
  CHECK(small->status == 200);
  CHECK(json::parse(small->body)["choices"][0]["text"].is_string());
  // A 20 KB prompt sent the same way: httplib refuses form bodies over 8 KB; the message says what to do.
  const std::string big = json{{"prompt", std::string(20000, 'a')}, {"max_tokens", 2}}.dump();
  auto r = cli.Post("/v1/completions", big, "application/x-www-form-urlencoded");
  REQUIRE(r);
  CHECK(r->status == 413);
  auto j = json::parse(r->body);
  CHECK(j["error"]["message"].get<std::string>().find("Content-Type: application/json") != std::string::npos);
  auto ok = cli.Post("/v1/completions", big, "application/json");
  REQUIRE(ok);
  CHECK(ok->status == 200);
  auto nf = cli.Get("/v1/nothing");
  REQUIRE(nf);
  CHECK(nf->status == 404);
  CHECK(json::parse(nf->body)["error"]["message"].get<std::string>().find("/v1/nothing") != std::string::npos);
  std::string err;
  int rc = run_cmd({lctx_test::lctx_bin(), "serve", "--model", "swa:" + ck, "--port", "0", "--max-tokens-limit", "-1"},
                   root(), nullptr, &err);
  check_one_line_error(rc, err, "--max-tokens-limit must be an integer in [1, 1048576], got '-1'");
}

#endif  // LCTX_HAVE_HTTPLIB

TEST_CASE("train: never overwrites a trained model without --resume/--force; bad numbers refused up front",
          "[faults]") {
  const std::string out = root() + "/train";
  auto args = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {lctx_test::lctx_bin(), "train", "--arch", "swa", "--preset", "tiny", "--context",
                                  "64", "--mix", "copy:1", "--steps", "2", "--batch", "2", "--warmup", "0",
                                  "--log-every", "1", "--out", out};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  std::string err;
  int rc = run_cmd(args({}), root(), nullptr, &err);
  INFO(err);
  REQUIRE(rc == 0);
  const std::string weights = read_text(out + "/model.safetensors"), log = read_text(out + "/train_log.jsonl");
  REQUIRE(std::count(log.begin(), log.end(), '\n') == 2);

  rc = run_cmd(args({"--seed", "9"}), root(), nullptr, &err);
  check_one_line_error(rc, err, "already holds a trained model");
  rc = run_cmd(args({"--lr", "inf", "--force"}), root(), nullptr, &err);
  check_one_line_error(rc, err, "--lr must be a finite number");
  rc = run_cmd(args({"--clip", "-1", "--force"}), root(), nullptr, &err);
  check_one_line_error(rc, err, "--clip must be a finite number >= 0");
  rc = run_cmd(args({"--lr", "nan", "--resume"}), root(), nullptr, &err);
  check_one_line_error(rc, err, "--lr must be a finite number");
  CHECK(read_text(out + "/model.safetensors") == weights);  // nothing was touched
  CHECK(read_text(out + "/train_log.jsonl") == log);

  rc = run_cmd(args({"--seed", "9", "--force"}), root(), nullptr, &err);
  INFO(err);
  CHECK(rc == 0);
  CHECK(read_text(out + "/model.safetensors") != weights);
}

TEST_CASE("checkpoints: bad config.json values and broken weights name the file and the key", "[faults]") {
  auto tok = lctx::Tokenizer::load(lctx::default_tokenizer_path());
  const std::string good = make_checkpoint("ck-good");
  auto with_arch = [&](const std::string& name, const std::function<void(json&)>& edit) {
    const std::string d = root() + "/" + name;
    fs::create_directories(d);
    fs::copy_file(good + "/model.safetensors", d + "/model.safetensors", fs::copy_options::overwrite_existing);
    auto cfg = json::parse(read_text(good + "/config.json"));
    edit(cfg);
    put(d + "/config.json", cfg.dump(2));
    return d;
  };
  const torch::Device cpu(torch::kCPU);
  struct Case {
    const char* name;
    std::function<void(json&)> edit;
    const char* want;
  };
  const std::vector<Case> cases = {
      {"window0", [](json& c) { c["arch"]["window"] = 0; }, "'window' must be >= 1, got 0"},
      {"unknown", [](json& c) { c["arch"]["windwo"] = 8; }, "unknown key 'windwo'"},
      {"dstring", [](json& c) { c["arch"]["d_model"] = "32"; }, "'d_model' must be an integer, got \"32\""},
      {"heads", [](json& c) { c["arch"]["n_heads"] = 3; }, "d_model must be a multiple of n_heads"},
      {"hugefloat", [](json& c) { c["arch"]["d_model"] = 1e30; }, "'d_model' must be an integer"},
      {"tokint", [](json& c) { c["tokenizer_hash"] = 12345; }, "\"tokenizer_hash\" must be a string"},
  };
  for (auto& k : cases) {
    INFO(k.name);
    const std::string d = with_arch(k.name, k.edit);
    REQUIRE_THROWS_WITH(lctx::models::load_checkpoint(d, "", cpu), has(d + "/config.json") && has(k.want));
  }
  // Through the binary: one line, no library text.
  const std::string d = with_arch("window0-bin", cases[0].edit);
  std::string err;
  int rc = run_cmd({lctx_test::lctx_bin(), "run", "--model", "swa:" + d, "--tasks", "niah_single_1", "--lengths",
                    "512", "--samples", "1", "-q", "--out", root() + "/r-window0"},
                   root(), nullptr, &err);
  check_one_line_error(rc, err, d + "/config.json: swa config: 'window' must be >= 1, got 0");
  const std::string d2 = with_arch("tokint-bin", cases[5].edit);
  rc = run_cmd({lctx_test::lctx_bin(), "run", "--model", "swa:" + d2, "--tasks", "niah_single_1", "--lengths", "512",
                "--samples", "1", "-q", "--out", root() + "/r-tokint"},
               root(), nullptr, &err);
  check_one_line_error(rc, err, "\"tokenizer_hash\" must be a string");
  CHECK(err.find("type_error") == std::string::npos);

  SECTION("absurd safetensors shapes are refused before any allocation") {
    const std::string a = root() + "/absurd";
    fs::create_directories(a);
    fs::copy_file(good + "/config.json", a + "/config.json", fs::copy_options::overwrite_existing);
    // [2^62, 4] F32: the byte size overflows 64 bits to 0, matching empty data offsets.
    std::string h = "{\"x\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,0]}}";
    while ((8 + h.size()) % 8) h += ' ';
    std::string file(8, '\0');
    for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
    put(a + "/model.safetensors", file + h);
    REQUIRE_THROWS_WITH(lctx::models::load_checkpoint(a, "", cpu),
                        has(a + "/model.safetensors: corrupt safetensors file: entry 'x' has a shape larger than the file"));
  }
  SECTION("all-NaN weights are refused") {
    const std::string n = root() + "/nan";
    torch::manual_seed(1);
    auto m = lctx::models::build_model(
        json{{"kind", "swa"}, {"preset", "tiny"}, {"d_model", 32}, {"n_layers", 1}, {"n_heads", 2}, {"window", 32}});
    {
      torch::NoGradGuard ng;
      for (auto& p : m->parameters()) p.fill_(std::numeric_limits<float>::quiet_NaN());
    }
    lctx::models::save_checkpoint(n, *m, json{{"tokenizer_hash", tok->hash()}});
    REQUIRE_THROWS_WITH(lctx::models::load_checkpoint(n, "", cpu),
                        has(n + "/model.safetensors: tensor '") && has("holds NaN or infinite values"));
  }
  SECTION("a config.json without tokenizer_hash is loaded with a warning") {
    const std::string w = with_arch("nohash", [](json& c) { c.erase("tokenizer_hash"); });
    std::string out;
    rc = run_cmd({lctx_test::lctx_bin(), "run", "--model", "swa:" + w, "--tasks", "niah_single_1", "--lengths",
                  "512", "--samples", "1", "--max-new", "2", "-q", "--out", root() + "/r-nohash"},
                 root(), &out, &err);
    INFO(err);
    CHECK(rc == 0);
    CHECK(err.find("lctx: warning: model swa:" + w + ": " + w + "/config.json records no tokenizer_hash") !=
          std::string::npos);
  }
}

TEST_CASE("results store: a last record lacking its newline is kept and completed, a torn one dropped",
          "[faults]") {
  const std::string f = root() + "/store/results.jsonl";
  const std::string a = json{{"key", "a"}, {"score", 1}}.dump(), b = json{{"key", "b"}, {"score", 0}}.dump();
  put(f, a + "\n" + b);
  {
    lctx::harness::ResultStore s(f);
    CHECK(s.repaired_newline());
    CHECK(s.truncated_bytes() == 0);
    s.append(json{{"key", "c"}});
  }
  CHECK(read_text(f) == a + "\n" + b + "\n" + json{{"key", "c"}}.dump() + "\n");
  put(f, a + "\n" + b.substr(0, 7));
  {
    lctx::harness::ResultStore s(f);
    CHECK(!s.repaired_newline());
    CHECK(s.truncated_bytes() == 7);
  }
  CHECK(read_text(f) == a + "\n");
  std::set<std::string> keys;
  put(f, a + "\n" + b);
  lctx::harness::read_keys(f, keys);
  CHECK(keys == std::set<std::string>{"a", "b"});
}
