// Signed calls end to end over loopback: the shop example served by
// a dispatch::Server that verifies RFC 9421 signatures (and, in some tests,
// requires a bearer key), called by a dispatch::HttpClient that signs, and by
// a raw socket for what a well-behaved client never sends (tampered,
// unsigned, wrongly keyed requests). The server's log proves that a refused
// request never ran a function. The shop-server and shop-client programs are
// also run as processes with keys from the environment.
//
// Not for: the signature algorithms and parsers themselves (security_test),
// or an independent implementation (node_signed_call.cjs, run by ctest).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/security/keys.h"
#include "dispatch/security/signature.h"
#include "dispatch/transport/http_client.h"
#include "dispatch/transport/server.h"
#include "shop/api.dispatch.h"
#include "transport/test_child_process.h"
#include "transport/test_service.h"  // RawConnection (runtime/src/transport)

namespace {

using dispatch::Code;
using dispatch::testing::RawConnection;
using dispatch::testing::RawResponse;
namespace remote = shop::remote;
namespace sec = dispatch::security;

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

sec::SigningKey key(char fill) { return sec::SigningKey::from_seed(std::string(32, fill)).value(); }

std::shared_ptr<const sec::Signer> signer(char fill, std::string keyid = "default") {
  sec::SignerOptions options;
  options.keyid = std::move(keyid);
  return std::make_shared<sec::Signer>(key(fill), options);
}

// Every line the server logs, for checking what ran and what was said.
class LogCapture {
 public:
  dispatch::Logger logger() {
    return dispatch::Logger(dispatch::LogLevel::info, [this](dispatch::LogLevel, std::string_view line) {
      std::lock_guard lock(mu_);
      lines_.emplace_back(line);
    });
  }
  int count(std::string_view text) const {
    std::lock_guard lock(mu_);
    int n = 0;
    for (const auto& line : lines_) n += contains(line, text);
    return n;
  }
  std::string all() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& line : lines_) out += line + "\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// A request for a raw socket, signed and then (maybe) tampered with.
struct RawRequest {
  std::string method = "POST";
  std::string path = "/shop.ApiService/add";
  std::string host;
  std::string content_type = "application/proto";
  std::string body = std::string("\x08\x28\x10\x02", 4);  // a=40, b=2
  std::vector<std::pair<std::string, std::string>> headers;

  RawRequest& sign(const sec::Signer& s) {
    for (auto& h : s.sign(method, path, host, content_type, body)) headers.push_back(std::move(h));
    return *this;
  }
  std::string text() const {
    std::string out = method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: " + content_type +
                      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    for (const auto& [name, value] : headers) out += name + ": " + value + "\r\n";
    return out + "\r\n" + body;
  }
  // Removes a header (case-insensitive name); fails the test when absent, so
  // a tamper case cannot pass by removing nothing.
  void erase(std::string_view name) {
    const auto before = headers.size();
    for (auto it = headers.begin(); it != headers.end();) {
      const bool same = it->first.size() == name.size() &&
                        std::equal(name.begin(), name.end(), it->first.begin(), [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a)) ==
                                 std::tolower(static_cast<unsigned char>(b));
                        });
      it = same ? headers.erase(it) : it + 1;
    }
    EXPECT_LT(headers.size(), before) << "no header " << name;
  }
};

class SignedShop : public ::testing::Test {
 protected:
  // Starts the shop with `options` (port, logger filled in here).
  void serve(dispatch::ServerOptions options) {
    options.port = 0;
    options.logger = log_.logger();
    server_ = std::make_unique<dispatch::Server>(table_, std::move(options));
    ASSERT_TRUE(server_->start().ok());
    authority_ = "127.0.0.1:" + std::to_string(server_->port());
    url_ = "http://" + authority_;
  }
  void serve_verifying(std::shared_ptr<const sec::Verifier> verifier) {
    dispatch::ServerOptions options;
    options.verifier = std::move(verifier);
    serve(std::move(options));
  }
  std::unique_ptr<dispatch::HttpClient> client(std::shared_ptr<const sec::Signer> s, std::string api_key = "") {
    dispatch::HttpClientOptions options;
    options.signer = std::move(s);
    options.api_key = std::move(api_key);
    return std::make_unique<dispatch::HttpClient>(url_, options);
  }
  RawResponse send(const RawRequest& request) {
    RawConnection raw(server_->port());
    raw.send(request.text());
    return raw.read();
  }
  RawRequest raw_request() {
    RawRequest r;
    r.host = authority_;
    return r;
  }
  int calls_run() const { return log_.count("executing: "); }

  dispatch::DispatchTable table_{&remote::api_service()};
  LogCapture log_;
  std::unique_ptr<dispatch::Server> server_;
  std::string authority_, url_;
};

TEST_F(SignedShop, EveryFunctionInBinaryWithASigningClient) {
  serve_verifying(std::make_shared<sec::Verifier>(key('a').public_key()));
  auto c = client(signer('a'));
  EXPECT_EQ(remote::add(*c, 40, 2), 42);
  shop::Order order = remote::place_order(*c, {{"apple", 3, 0.5}, {"pear", 1, 0.75}}, "1001");
  EXPECT_EQ(order.customer, 1001);
  EXPECT_EQ(order.items.size(), 2u);
  remote::charge(*c, order);
  EXPECT_EQ(remote::get_order(*c, order.id).status, shop::Status::paid);
  EXPECT_EQ(remote::slow(*c, 1), "slept 1 ms");
  EXPECT_EQ(remote::add.async(*c, 2, 3).get(), 5);
  // A function's own error is still its own, not an authentication failure.
  auto missing = remote::get_order.try_call(*c, "o-none");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Code::not_found);
  EXPECT_EQ(calls_run(), 7) << log_.all();
  EXPECT_EQ(log_.count("rejected"), 0) << log_.all();
}

TEST_F(SignedShop, EveryFunctionInJsonSignedBySigner) {
  serve_verifying(std::make_shared<sec::Verifier>(key('a').public_key()));
  const auto s = signer('a');
  RawConnection raw(server_->port());  // one keep-alive connection for all
  auto call = [&](const char* function, const std::string& json) {
    RawRequest r = raw_request();
    r.path = std::string("/shop.ApiService/") + function;
    r.content_type = "application/json";
    r.body = json;
    raw.send(r.sign(*s).text());
    return raw.read();
  };
  auto r = call("add", R"({"a": "40", "b": 2})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"result":"42"})");
  r = call("place_order", R"({"items": [{"sku": "apple", "qty": 2, "price": 0.5}], "customer": "12"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto id_at = r.body.find(R"("id":")") + 6;
  const std::string id = r.body.substr(id_at, r.body.find('"', id_at) - id_at);
  r = call("charge_v2", R"({"order": {"id": ")" + id + R"("}})");
  EXPECT_EQ(r.status, 200) << r.body;
  r = call("get_order", R"({"id": ")" + id + R"("})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(contains(r.body, R"("status":"STATUS_PAID")")) << r.body;
  r = call("slow", R"({"ms": 1})");
  EXPECT_EQ(r.body, R"({"result":"slept 1 ms"})");
  EXPECT_EQ(calls_run(), 5) << log_.all();
}

TEST_F(SignedShop, SignedButUndecodableJsonIsStillABadRequest) {
  // Decoding moves to the worker after verification; its errors keep their
  // status and the connection keeps serving.
  serve_verifying(std::make_shared<sec::Verifier>(key('a').public_key()));
  RawConnection raw(server_->port());
  RawRequest bad = raw_request();
  bad.content_type = "application/json";
  bad.body = R"({"a": "forty"})";
  raw.send(bad.sign(*signer('a')).text());
  auto r = raw.read();
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_TRUE(contains(r.body, "invalid_argument")) << r.body;
  raw.send(raw_request().sign(*signer('a')).text());
  r = raw.read();
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(calls_run(), 1) << log_.all();
}

TEST_F(SignedShop, ManyThreadsSigningThroughOneClient) {
  serve_verifying(std::make_shared<sec::Verifier>(key('a').public_key()));
  auto c = client(signer('a'));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto r = remote::add.try_call(*c, t, i);
        if (!r.ok() || *r != t + i) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(calls_run(), 200);
}

TEST_F(SignedShop, WrongKeyIsRefusedWith403AndNothingRuns) {
  serve_verifying(std::make_shared<sec::Verifier>(key('a').public_key()));
  auto c = client(signer('b'));
  auto r = remote::add.try_call(*c, 1, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::permission_denied);
  EXPECT_TRUE(contains(r.error().message(), "request signature: ")) << r.error().message();
  EXPECT_TRUE(contains(r.error().message(), "does not verify")) << r.error().message();
  // The Connect error body as any client sees it.
  auto raw = send(raw_request().sign(*signer('b')));
  EXPECT_EQ(raw.status, 403);
  EXPECT_EQ(raw.headers["content-type"], "application/json");
  EXPECT_TRUE(contains(raw.body, R"("code":"permission_denied")")) << raw.body;
  EXPECT_EQ(calls_run(), 0) << log_.all();
}

TEST_F(SignedShop, UnsignedClientIsRefusedWith401) {
  serve_verifying(std::make_shared<sec::Verifier>(key('a').public_key()));
  auto c = client(nullptr);
  auto r = remote::add.try_call(*c, 1, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::unauthenticated);
  EXPECT_TRUE(contains(r.error().message(), "missing Signature")) << r.error().message();
  auto raw = send(raw_request());
  EXPECT_EQ(raw.status, 401);
  EXPECT_TRUE(contains(raw.body, R"("code":"unauthenticated")")) << raw.body;
  // Health checks stay open: load balancers do not sign.
  RawConnection health(server_->port());
  health.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(health.read().status, 200);
  EXPECT_EQ(calls_run(), 0) << log_.all();
}

TEST_F(SignedShop, RotationAcceptsEitherKeyAndKeyidSelects) {
  serve_verifying(std::make_shared<sec::Verifier>(
      std::vector<sec::NamedKey>{{"old", key('o').public_key()}, {"new", key('n').public_key()}}));
  EXPECT_EQ(remote::add(*client(signer('o', "old")), 1, 2), 3);
  EXPECT_EQ(remote::add(*client(signer('n', "new")), 1, 2), 3);
  // The keyid picks the key: the new key under the old keyid does not verify.
  auto crossed = remote::add.try_call(*client(signer('n', "old")), 1, 2);
  ASSERT_FALSE(crossed.ok());
  EXPECT_EQ(crossed.error().code(), Code::permission_denied);
  EXPECT_TRUE(contains(crossed.error().message(), R"(keyid "old")")) << crossed.error().message();
  auto unknown = remote::add.try_call(*client(signer('n', "other")), 1, 2);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Code::permission_denied);
  EXPECT_TRUE(contains(unknown.error().message(), R"(unknown keyid "other")")) << unknown.error().message();
  EXPECT_EQ(calls_run(), 2) << log_.all();
}

TEST_F(SignedShop, TamperedRequestsAreRefusedWithTheRightCode) {
  serve_verifying(std::make_shared<sec::Verifier>(key('a').public_key()));
  const auto s = signer('a');
  {
    auto r = send(raw_request().sign(*s));
    ASSERT_EQ(r.status, 200) << r.body;  // untouched, it works
  }
  struct Case {
    const char* what;
    std::function<void(RawRequest&)> tamper;
    int status;
    const char* message;
  };
  const Case cases[] = {
      {"body changed", [](RawRequest& r) { r.body[1] = '\x29'; }, 403, "does not match the request body"},
      {"body extended", [](RawRequest& r) { r.body += std::string("\x18\x01", 2); }, 403,
       "does not match the request body"},
      {"path changed", [](RawRequest& r) { r.path = "/shop.ApiService/slow"; }, 403, "does not verify"},
      {"host changed", [&](RawRequest& r) { r.host = "127.0.0.2:" + std::to_string(server_->port()); }, 403,
       "does not verify"},
      {"content type changed", [](RawRequest& r) { r.content_type = "application/proto; charset=x"; }, 403,
       "does not verify"},
      {"digest replaced by the new body's",
       [](RawRequest& r) {
         r.body[1] = '\x29';
         r.erase("content-digest");
         r.headers.emplace_back("content-digest", sec::content_digest(r.body));
       },
       403, "does not verify"},
      {"digest removed", [](RawRequest& r) { r.erase("content-digest"); }, 401, "content-digest"},
      {"signature removed", [](RawRequest& r) { r.erase("signature"); }, 401, "missing Signature header"},
  };
  for (const Case& c : cases) {
    RawRequest request = raw_request();
    request.sign(*s);
    c.tamper(request);
    auto r = send(request);
    EXPECT_EQ(r.status, c.status) << c.what << ": " << r.body;
    EXPECT_TRUE(contains(r.body, c.message)) << c.what << ": " << r.body;
    EXPECT_TRUE(contains(r.body, c.status == 401 ? "unauthenticated" : "permission_denied")) << r.body;
  }
  EXPECT_EQ(calls_run(), 1) << log_.all();
  EXPECT_EQ(log_.count("rejected POST"), 8) << log_.all();
}

TEST_F(SignedShop, StaleSignatureIsRefused) {
  serve_verifying(std::make_shared<sec::Verifier>(key('a').public_key()));
  RawRequest request = raw_request();
  for (auto& h : signer('a')->sign(request.method, request.path, request.host, request.content_type, request.body,
                                   std::chrono::system_clock::now() - std::chrono::minutes(6))) {
    request.headers.push_back(std::move(h));
  }
  auto r = send(request);
  EXPECT_EQ(r.status, 403);
  EXPECT_TRUE(contains(r.body, "older than the max age")) << r.body;
  EXPECT_EQ(calls_run(), 0);
}

TEST_F(SignedShop, BearerKeyRequired) {
  dispatch::ServerOptions options;
  options.bearer_keys = std::make_shared<sec::BearerKeys>(std::vector<std::string>{"right-key"});
  serve(std::move(options));
  auto missing = remote::add.try_call(*client(nullptr), 1, 2);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Code::unauthenticated);
  EXPECT_EQ(missing.error().message(), "API key: missing Authorization header");
  auto wrong = remote::add.try_call(*client(nullptr, "wrong-key"), 1, 2);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code(), Code::unauthenticated);
  EXPECT_EQ(wrong.error().message(), "API key: unknown API key");
  EXPECT_EQ(remote::add(*client(nullptr, "right-key"), 1, 2), 3);
  EXPECT_EQ(calls_run(), 1) << log_.all();
}

TEST_F(SignedShop, BearerKeyAndSignatureTogether) {
  dispatch::ServerOptions options;
  options.bearer_keys = std::make_shared<sec::BearerKeys>(std::vector<std::string>{"right-key"});
  options.verifier = std::make_shared<sec::Verifier>(key('a').public_key());
  serve(std::move(options));
  EXPECT_EQ(remote::add(*client(signer('a'), "right-key"), 1, 2), 3);
  EXPECT_EQ(remote::add.try_call(*client(signer('a'), "wrong"), 1, 2).error().code(), Code::unauthenticated);
  EXPECT_EQ(remote::add.try_call(*client(signer('b'), "right-key"), 1, 2).error().code(), Code::permission_denied);
  EXPECT_EQ(calls_run(), 1) << log_.all();
}

TEST_F(SignedShop, UnverifiedWarningIsLoggedOnceAtStart) {
  dispatch::ServerOptions options;
  options.warn_if_unverified = true;
  serve(std::move(options));
  auto c = client(nullptr);
  EXPECT_EQ(remote::add(*c, 1, 2), 3);
  EXPECT_EQ(remote::add(*c, 3, 4), 7);
  server_->drain();
  EXPECT_EQ(log_.count("requests are not verified"), 1) << log_.all();
}

TEST_F(SignedShop, NoWarningWhenVerifyingOrNotAsked) {
  dispatch::ServerOptions options;
  options.warn_if_unverified = true;
  options.verifier = std::make_shared<sec::Verifier>(key('a').public_key());
  serve(std::move(options));
  server_->drain();
  EXPECT_EQ(log_.count("requests are not verified"), 0) << log_.all();
  EXPECT_EQ(log_.count("verifying request signatures"), 1) << log_.all();
}

// ---- the example programs, keys from the environment ----------------------

// A child process with extra environment variables; stderr read line by line.
class Process {
 public:
  Process(const char* path, std::vector<std::string> args, std::vector<std::pair<std::string, std::string>> env) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    pid_ = dispatch::testing::fork_ending_with_parent();
    if (pid_ == 0) {
      ::dup2(fds[1], STDERR_FILENO);
      ::dup2(fds[1], STDOUT_FILENO);
      ::close(fds[0]);
      ::unsetenv("PORT");
      ::unsetenv("DISPATCH_SIGNING_KEY");
      ::unsetenv("DISPATCH_VERIFICATION_KEY");
      ::unsetenv("DISPATCH_API_KEY");
      for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
      std::vector<char*> argv{const_cast<char*>(path)};
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(path, argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = ::fdopen(fds[0], "r");
  }
  ~Process() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_) std::fclose(out_);
  }
  // Reads output until a line contains `text` (returns it) or EOF (returns "").
  std::string wait_for(std::string_view text) {
    char buf[4096];
    while (std::fgets(buf, sizeof buf, out_)) {
      std::string line(buf);
      output_ += line;
      if (contains(line, text)) return line;
    }
    return "";
  }
  // Reads to EOF, then reaps; the exit status.
  int finish() {
    wait_for("\x01never\x01");
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  pid_t pid() const { return pid_; }
  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  std::string output_;
  bool reaped_ = false;
};

uint16_t port_from(const std::string& listening_line) {
  return static_cast<uint16_t>(std::stoi(listening_line.substr(listening_line.rfind(':') + 1)));
}

int count(const std::string& s, std::string_view part) {
  int n = 0;
  for (auto at = s.find(part); at != std::string::npos; at = s.find(part, at + 1)) ++n;
  return n;
}

TEST(ShopPrograms, VerifyingServerAndSigningClientFromTheEnvironment) {
  const auto k = key('e');
  // The PEM with literal \n, as a .env file or a container spec carries it.
  std::string pem;
  for (char ch : k.public_key().to_pem()) pem += ch == '\n' ? std::string("\\n") : std::string(1, ch);
  Process server(SHOP_SERVER_PATH, {}, {{"DISPATCH_ENDPOINT_ADDR", "127.0.0.1:0"}, {"DISPATCH_VERIFICATION_KEY", pem}});
  const std::string listening = server.wait_for("listening on http://127.0.0.1:");
  ASSERT_FALSE(listening.empty()) << server.output();
  const std::string url = "http://127.0.0.1:" + std::to_string(port_from(listening));

  Process signed_client(SHOP_CLIENT_PATH, {url}, {{"DISPATCH_SIGNING_KEY", k.to_pem()}});
  EXPECT_EQ(signed_client.finish(), 0) << signed_client.output();

  Process unsigned_client(SHOP_CLIENT_PATH, {url}, {});
  EXPECT_EQ(unsigned_client.finish(), 1) << unsigned_client.output();
  EXPECT_TRUE(contains(unsigned_client.output(), "unauthenticated")) << unsigned_client.output();

  Process wrong_client(SHOP_CLIENT_PATH, {url}, {{"DISPATCH_SIGNING_KEY", key('f').to_pem()}});
  EXPECT_EQ(wrong_client.finish(), 1) << wrong_client.output();
  EXPECT_TRUE(contains(wrong_client.output(), "permission_denied")) << wrong_client.output();

  ::kill(server.pid(), SIGTERM);
  EXPECT_EQ(server.finish(), 0) << server.output();
  EXPECT_EQ(count(server.output(), "requests are not verified"), 0) << server.output();
}

TEST(ShopPrograms, MalformedKeysAreClearErrorsNotCrashes) {
  Process server(SHOP_SERVER_PATH, {}, {{"DISPATCH_ENDPOINT_ADDR", "127.0.0.1:0"},
                                        {"DISPATCH_VERIFICATION_KEY", "not-a-key"}});
  EXPECT_EQ(server.finish(), 2) << server.output();
  EXPECT_TRUE(contains(server.output(), "DISPATCH_VERIFICATION_KEY")) << server.output();
  Process client(SHOP_CLIENT_PATH, {"http://127.0.0.1:1"}, {{"DISPATCH_SIGNING_KEY", "c2hvcnQ="}});
  EXPECT_EQ(client.finish(), 2) << client.output();
  EXPECT_TRUE(contains(client.output(), "DISPATCH_SIGNING_KEY")) << client.output();
}

TEST(ShopPrograms, UnverifiedServerWarnsOnce) {
  Process server(SHOP_SERVER_PATH, {}, {{"DISPATCH_ENDPOINT_ADDR", "127.0.0.1:0"}});
  const std::string listening = server.wait_for("listening on http://127.0.0.1:");
  ASSERT_FALSE(listening.empty()) << server.output();
  Process client(SHOP_CLIENT_PATH, {"http://127.0.0.1:" + std::to_string(port_from(listening))}, {});
  EXPECT_EQ(client.finish(), 0) << client.output();
  ::kill(server.pid(), SIGTERM);
  EXPECT_EQ(server.finish(), 0) << server.output();
  EXPECT_EQ(count(server.output(), "requests are not verified"), 1) << server.output();
}

}  // namespace
