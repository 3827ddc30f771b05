// dispatchd and dispatchctl as processes over loopback: bearer keys, each
// kind of bad input getting a clear error or a clear final status (unknown
// function at the endpoint, unreachable endpoint, malformed Any, expired
// call), the await form, dispatchctl's text, JSON and exit codes, a
// workflow and its tree, --retention (parsed, bad values refused, ended
// calls deleted) and --cors-origin (browser pages of an allowed origin).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "dispatch/durable/dispatch_client.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "dispatch/security/keys.h"
#include "dispatch/transport/http_client.h"
#include "durable/protocol.h"

namespace {

using namespace std::chrono_literals;

using durable_test::free_port;
using durable_test::port_open;
using durable_test::spawn;

using durable_test::Output;
using durable_test::run;

std::string read_all(FILE* f) {
  std::string text;
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) text.append(buf.data(), n);
  return text;
}

// Runs a command line, capturing stdout and stderr apart (stderr through a
// file in `dir`).
struct Streams {
  int status;
  std::string out, err;
};
Streams run_apart(const std::string& command, const std::string& dir) {
  const std::string err_file = dir + "stderr";
  Streams r{0, "", ""};
  FILE* p = ::popen((command + " 2>" + err_file).c_str(), "r");
  r.out = read_all(p);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  if (FILE* f = std::fopen(err_file.c_str(), "r")) {
    r.err = read_all(f);
    std::fclose(f);
  }
  return r;
}

// Non-empty and ending with exactly one newline, as a shell prompt and a
// line-reading script expect.
::testing::AssertionResult one_final_newline(const std::string& text) {
  if (text.empty()) return ::testing::AssertionFailure() << "nothing was printed";
  if (text.back() != '\n') return ::testing::AssertionFailure() << "no final newline: [" << text << "]";
  if (text.size() >= 2 && text[text.size() - 2] == '\n') {
    return ::testing::AssertionFailure() << "an empty last line: [" << text << "]";
  }
  return ::testing::AssertionSuccess();
}

class Dispatchd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "dispatchd_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/";
    ASSERT_EQ(::system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str()), 0);
    api_port_ = free_port();
    ep_port_ = free_port();
    api_url_ = "http://127.0.0.1:" + std::to_string(api_port_);
    ep_url_ = "http://127.0.0.1:" + std::to_string(ep_port_);
    start_scheduler();
    endpoint_ = spawn({DURABLE_ENDPOINT, "--listen", "127.0.0.1:" + std::to_string(ep_port_), "--log",
                       dir_ + "seen.log"},
                      dir_ + "endpoint.log", {{"DISPATCH_VERIFICATION_KEY", key_.public_key().to_base64()}});
    for (int i = 0; i < 500 && !(port_open(api_port_) && port_open(ep_port_)); ++i) {
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(port_open(api_port_) && port_open(ep_port_));
  }
  void TearDown() override {
    for (pid_t pid : {scheduler_, endpoint_}) {
      ::kill(pid, SIGTERM);
      int st = 0;
      ::waitpid(pid, &st, 0);
    }
    if (!HasFailure()) ::system(("rm -rf " + dir_).c_str());
  }
  // dispatchd on the test's database and port, with `extra` flags.
  void start_scheduler(const std::vector<std::string>& extra = {},
                       std::vector<std::pair<std::string, std::string>> env = {},
                       const std::string& log = "dispatchd.log") {
    std::vector<std::string> args{DISPATCHD, "--db", dir_ + "d.db", "--listen",
                                  "127.0.0.1:" + std::to_string(api_port_), "--api-key", "k1",
                                  "--max-attempts", "2", "--min-backoff-ms", "10"};
    args.insert(args.end(), extra.begin(), extra.end());
    env.emplace_back("DISPATCH_SIGNING_KEY", key_.to_pem());
    scheduler_ = spawn(args, dir_ + log, env);
  }
  void stop_scheduler() {
    ::kill(scheduler_, SIGTERM);
    int st = 0;
    ::waitpid(scheduler_, &st, 0);
  }
  std::unique_ptr<dispatch::HttpClient> api(const std::string& key) {
    dispatch::HttpClientOptions o;
    o.api_key = key;
    return std::make_unique<dispatch::HttpClient>(api_url_, o);
  }
  std::string ctl(const std::string& args) {
    return std::string(DISPATCHCTL) + " --url " + api_url_ + " --api-key k1 " + args;
  }
  // `n` clients, each on a connection and a thread of its own, awaiting
  // the result of a call dispatched 10 minutes ahead, for up to `timeout`.
  struct Awaiting {
    std::string id;
    std::vector<std::unique_ptr<dispatch::HttpClient>> clients;
    std::vector<std::thread> threads;
    void join() {
      for (auto& t : threads) t.join();
    }
  };
  void await_later_call(Awaiting& a, int n, std::chrono::milliseconds timeout) {
    auto client = api("k1");
    dispatch::DispatchClient dc(*client, ep_url_);
    dispatch::DispatchOptions later;
    later.delay = std::chrono::minutes(10);
    auto sleeper = dc.dispatch("durable.record", "durable.RecordRequest", "later", later);
    ASSERT_TRUE(sleeper.ok()) << sleeper.error().what();
    a.id = *sleeper;
    for (int i = 0; i < n; ++i) a.clients.push_back(api("k1"));
    for (int i = 0; i < n; ++i) {
      a.threads.emplace_back([this, &a, i, timeout] {
        dispatch::DispatchClient waiter(*a.clients[i], ep_url_);
        (void)waiter.await_result(a.id, timeout);
      });
    }
    std::this_thread::sleep_for(500ms);  // the Gets are in and waiting
  }

  dispatch::security::SigningKey key_ = dispatch::security::SigningKey::generate();
  std::string dir_, api_url_, ep_url_;
  uint16_t api_port_ = 0, ep_port_ = 0;
  pid_t scheduler_ = -1, endpoint_ = -1;
};

TEST_F(Dispatchd, BearerKeysAreRequired) {
  for (const char* key : {"", "wrong"}) {
    auto client = api(key);
    dispatch::DispatchClient dc(*client, ep_url_);
    auto r = dc.dispatch("durable.record", "durable.RecordRequest", "x");
    ASSERT_FALSE(r.ok()) << "key '" << key << "' was accepted";
    EXPECT_EQ(r.error().code(), dispatch::Code::unauthenticated) << r.error().what();
  }
  auto client = api("k1");
  dispatch::DispatchClient dc(*client, ep_url_);
  auto id = dc.dispatch("durable.record", "durable.RecordRequest", "hello");
  ASSERT_TRUE(id.ok()) << id.error().what();
  auto result = dc.await_result(*id, 20s);
  ASSERT_TRUE(result.ok()) << result.error().what();
  EXPECT_EQ(*result, "hello");
}

// Clients awaiting results (Get with wait_ms) sleep on threads of their
// own: more of them than dispatchd has workers (32) do not hold up a
// Dispatch, which needs a worker to wait for its commit.
TEST_F(Dispatchd, ManyAwaitingClientsDoNotHoldUpDispatch) {
  constexpr int kAwaiting = 48;
  Awaiting awaiting;
  await_later_call(awaiting, kAwaiting, 8s);  // still pending at the end
  if (HasFatalFailure()) return;
  dispatch::HttpClientOptions o;
  o.api_key = "k1";
  o.default_timeout = 4s;  // the awaits last 8 s: a Dispatch queued behind them would not make it
  dispatch::HttpClient quick(api_url_, o);
  dispatch::DispatchClient dq(quick, ep_url_);
  const auto began = std::chrono::steady_clock::now();
  auto id = dq.dispatch("durable.record", "durable.RecordRequest", "now");
  const auto took = std::chrono::steady_clock::now() - began;
  awaiting.join();
  ASSERT_TRUE(id.ok()) << "a Dispatch behind " << kAwaiting << " awaiting clients: " << id.error().what();
  EXPECT_LT(took, 4s);
  auto result = dq.await_result(*id, 20s);
  ASSERT_TRUE(result.ok()) << result.error().what();
  EXPECT_EQ(*result, "now");
}

// Nor do they hold up a drain: at SIGTERM their Gets answer at once (with
// the call as it is; a client asks again) and dispatchd exits well within
// its 30 s drain timeout, which each waiting Get used to run out.
TEST_F(Dispatchd, ClientsAwaitingResultsDoNotHoldUpTheDrain) {
  Awaiting awaiting;
  await_later_call(awaiting, 4, 60s);  // ends with dispatchd
  if (HasFatalFailure()) return;
  const auto began = std::chrono::steady_clock::now();
  stop_scheduler();
  const auto took = std::chrono::steady_clock::now() - began;
  awaiting.join();
  EXPECT_LT(took, 10s) << "dispatchd took "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                       << " ms to stop with clients awaiting results";
  start_scheduler();  // for TearDown, and the call is still there
  for (int i = 0; i < 500 && !port_open(api_port_); ++i) std::this_thread::sleep_for(10ms);
  auto kept = api("k1");
  dispatch::DispatchClient after(*kept, ep_url_);
  auto waiting = after.await_result(awaiting.id, 100ms);
  ASSERT_FALSE(waiting.ok());
  EXPECT_EQ(waiting.error().code(), dispatch::Code::deadline_exceeded) << waiting.error().what();
}

TEST_F(Dispatchd, BadInputGetsClearErrorsOrFinalStatuses) {
  auto client = api("k1");
  dispatch::DispatchClient dc(*client, ep_url_);
  // Not registered at the endpoint: HTTP 404 not_found, which is NOT_FOUND,
  // not retried, with the endpoint's words.
  auto missing = dc.dispatch("durable.nope", "durable.NopeRequest", "");
  ASSERT_TRUE(missing.ok());
  auto r = dc.await_result(*missing, 20s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), dispatch::Code::not_found) << r.error().what();
  EXPECT_NE(r.error().message().find("'durable.nope' is not registered at this endpoint"), std::string::npos)
      << r.error().what();
  // Wrong input type for a registered function: INVALID_ARGUMENT.
  auto wrong = dc.dispatch("durable.record", "durable.OtherRequest", "");
  ASSERT_TRUE(wrong.ok());
  r = dc.await_result(*wrong, 20s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), dispatch::Code::invalid_argument);
  EXPECT_NE(r.error().message().find("takes durable.RecordRequest"), std::string::npos) << r.error().what();
  // Unreachable endpoint: retried as TCP_ERROR, then given up (max 2 attempts).
  dispatch::DispatchOptions o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(free_port());
  auto unreachable = dc.dispatch("durable.record", "durable.RecordRequest", "", o);
  ASSERT_TRUE(unreachable.ok());
  r = dc.await_result(*unreachable, 20s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), dispatch::Code::unavailable);
  EXPECT_NE(r.error().message().find("gave up after 2 attempts"), std::string::npos) << r.error().what();
  // Malformed Any (no type URL) and unknown endpoint scheme: refused at once.
  dispatch::sdk::v1::DispatchRequest bad;
  auto* call = bad.add_calls();
  call->set_function("durable.record");
  call->set_endpoint(ep_url_);
  call->mutable_input()->set_value("x");
  auto refused = client->call("/dispatch.sdk.v1.DispatchService/Dispatch", bad.SerializeAsString(), {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), dispatch::Code::invalid_argument);
  EXPECT_NE(refused.error().message().find("type URL"), std::string::npos) << refused.error().what();
  o.endpoint = "gopher://x";
  EXPECT_EQ(dc.dispatch("durable.record", "durable.RecordRequest", "", o).error().code(),
            dispatch::Code::invalid_argument);
  // Expired: a call whose expiration passes while it is retried.
  o.endpoint = "http://127.0.0.1:" + std::to_string(free_port());
  o.expiration = 1ms;
  auto expiring = dc.dispatch("durable.record", "durable.RecordRequest", "", o);
  ASSERT_TRUE(expiring.ok());
  r = dc.await_result(*expiring, 20s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("expire"), std::string::npos) << r.error().what();
  // The scheduler keeps serving.
  auto fine = dc.dispatch("durable.record", "durable.RecordRequest", "still here");
  ASSERT_TRUE(fine.ok());
  EXPECT_EQ(dc.await_result(*fine, 20s).value(), "still here");
}

TEST_F(Dispatchd, DispatchctlTextJsonAndExitCodes) {
  Output d = run(ctl("dispatch durable.record --type durable.RecordRequest --input-hex 6869 --endpoint " + ep_url_));
  ASSERT_EQ(d.status, 0) << d.out;
  const std::string id = d.out.substr(0, d.out.find('\n'));
  ASSERT_EQ(id.size(), 32u) << d.out;

  Output status = run(ctl("status " + id + " --wait-ms 20000"));
  EXPECT_EQ(status.status, 0) << status.out;
  EXPECT_NE(status.out.find("state        completed"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("output       type.googleapis.com/durable.RecordResponse (2 bytes)"),
            std::string::npos) << status.out;

  Output json = run(ctl("--json status " + id));
  EXPECT_EQ(json.status, 0);
  EXPECT_NE(json.out.find("\"state\": \"CALL_STATE_COMPLETED\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"outputValue\": \"aGk=\""), std::string::npos) << json.out;  // "hi"

  Output list = run(ctl("list completed"));
  EXPECT_EQ(list.status, 0);
  EXPECT_NE(list.out.find(id + "  completed"), std::string::npos) << list.out;
  EXPECT_EQ(run(ctl("list pending")).out.find(id), std::string::npos);

  Output cancel = run(ctl("cancel " + id));
  EXPECT_EQ(cancel.status, 1);
  EXPECT_NE(cancel.out.find("failed_precondition: cannot cancel call " + id + ": it is already completed"),
            std::string::npos) << cancel.out;
  Output unknown = run(ctl("status 0123"));
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.out.find("not_found: no call has ID 0123"), std::string::npos) << unknown.out;
  EXPECT_EQ(run(ctl("list sideways")).status, 2);
  EXPECT_EQ(run(ctl("frobnicate")).status, 2);
  Output noauth = run(std::string(DISPATCHCTL) + " --url " + api_url_ + " --api-key nope list");
  EXPECT_EQ(noauth.status, 1);
  EXPECT_NE(noauth.out.find("unauthenticated"), std::string::npos) << noauth.out;
}

// A workflow through dispatchd and a signed endpoint, each its own
// process: it fans out three calls, sleeps, and ends with their answers;
// dispatchctl tree shows it with its children, in text and JSON.
TEST_F(Dispatchd, AWorkflowRunsThroughDispatchdAndDispatchctlShowsItsTree) {
  Output d = run(ctl("dispatch durable.fan --type durable.FanRequest --input-hex 33 --endpoint " + ep_url_));
  ASSERT_EQ(d.status, 0) << d.out;
  const std::string id = d.out.substr(0, d.out.find('\n'));
  Output status = run(ctl("--json status " + id + " --wait-ms 20000"));
  EXPECT_EQ(status.status, 0) << status.out;
  EXPECT_NE(status.out.find("\"state\": \"CALL_STATE_COMPLETED\""), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("\"outputValue\": \"cjAscjEscjI=\""), std::string::npos) << status.out;  // r0,r1,r2

  Output tree = run(ctl("tree " + id));
  EXPECT_EQ(tree.status, 0) << tree.out;
  EXPECT_NE(tree.out.find(id + "  completed"), std::string::npos) << tree.out;
  std::size_t records = 0;
  for (std::size_t at = tree.out.find("  durable.record"); at != std::string::npos;
       at = tree.out.find("  durable.record", at + 1)) {
    ++records;
  }
  EXPECT_EQ(records, 3u) << tree.out;
  EXPECT_NE(tree.out.find("  dispatch.sleep"), std::string::npos) << tree.out;
  EXPECT_TRUE(one_final_newline(tree.out));

  Output json = run(ctl("--json tree " + id));
  EXPECT_EQ(json.status, 0) << json.out;
  EXPECT_EQ(json.out.rfind("{\"call\":{", 0), 0u) << json.out;
  EXPECT_NE(json.out.find("\"parentId\":\"" + id + "\""), std::string::npos) << json.out;
  EXPECT_TRUE(one_final_newline(json.out));
  // A child's status names its parent.
  const std::size_t second = json.out.find("\"id\":\"", json.out.find("\"children\""));
  ASSERT_NE(second, std::string::npos) << json.out;
  const std::string child = json.out.substr(second + 6, 32);
  Output child_status = run(ctl("status " + child));
  EXPECT_EQ(child_status.status, 0) << child_status.out;
  EXPECT_NE(child_status.out.find("parent       " + id + " (correlation ID "), std::string::npos)
      << child_status.out;

  EXPECT_EQ(run(ctl("tree")).status, 2);
  Output unknown = run(ctl("tree 0123"));
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.out.find("not_found: no call has ID 0123"), std::string::npos) << unknown.out;
}

// dispatchctl history: a workflow's steps in the order it made them, each
// with when it was made and ended, its attempts and outcome; text and JSON.
TEST_F(Dispatchd, DispatchctlShowsAWorkflowsHistoryStepByStep) {
  Output d = run(ctl("dispatch durable.fan --type durable.FanRequest --input-hex 33 --endpoint " + ep_url_));
  ASSERT_EQ(d.status, 0) << d.out;
  const std::string id = d.out.substr(0, d.out.find('\n'));
  ASSERT_EQ(run(ctl("status " + id + " --wait-ms 20000")).status, 0);

  Output text = run(ctl("history " + id));
  ASSERT_EQ(text.status, 0) << text.out;
  EXPECT_TRUE(one_final_newline(text.out));
  EXPECT_EQ(text.out.rfind("workflow  " + id + "  durable.fan\n", 0), 0u) << text.out;
  EXPECT_NE(text.out.find("outcome   completed: durable.FanResponse (8 bytes) at +"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("steps     4\n"), std::string::npos) << text.out;
  // One line per step, numbered in the order the workflow made them: the
  // three records (one Poll), then the sleep.
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < text.out.size();) {
    const std::size_t end = text.out.find('\n', at);
    lines.push_back(text.out.substr(at, end - at));
    at = end + 1;
  }
  ASSERT_EQ(lines.size(), 9u) << text.out;  // 4 lines about the workflow, a header, 4 steps
  EXPECT_EQ(lines[4].rfind("STEP  MADE        ENDED       ATTEMPTS  ID", 0), 0u) << text.out;
  for (int step = 1; step <= 4; ++step) {
    const std::string& line = lines[4 + step];
    EXPECT_EQ(line.rfind("   " + std::to_string(step) + "  +", 0), 0u) << line;
    EXPECT_NE(line.find(step < 4 ? "durable.record" : "dispatch.sleep"), std::string::npos) << line;
    EXPECT_NE(line.find(step < 4 ? "completed: durable.RecordResponse (" : "completed: google.protobuf.Empty ("),
              std::string::npos)
        << line;
    EXPECT_NE(line.find("         1  "), std::string::npos) << line;  // one attempt each
  }

  Output json = run(ctl("--json history " + id));
  ASSERT_EQ(json.status, 0) << json.out;
  EXPECT_TRUE(one_final_newline(json.out));
  EXPECT_EQ(json.out.rfind("{\"workflow\":{\"id\":\"" + id + "\"", 0), 0u) << json.out;
  EXPECT_NE(json.out.find("\"steps\":[{\"step\":1,\"madeMs\":"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("{\"step\":4,"), std::string::npos) << json.out;
  EXPECT_EQ(json.out.find("{\"step\":5,"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"function\":\"dispatch.sleep\""), std::string::npos) << json.out;
  EXPECT_EQ(json.out.find("\"endedMs\":null"), std::string::npos) << json.out;

  // A call that made no calls has a history of no steps; bad IDs and usage.
  Output plain = run(ctl("dispatch durable.record --type durable.RecordRequest --input-hex 6869 --endpoint " + ep_url_));
  ASSERT_EQ(plain.status, 0) << plain.out;
  const std::string plain_id = plain.out.substr(0, plain.out.find('\n'));
  ASSERT_EQ(run(ctl("status " + plain_id + " --wait-ms 20000")).status, 0);
  Output none = run(ctl("history " + plain_id));
  EXPECT_EQ(none.status, 0) << none.out;
  EXPECT_NE(none.out.find("steps     0\n"), std::string::npos) << none.out;
  EXPECT_EQ(none.out.find("STEP"), std::string::npos) << none.out;
  Output none_json = run(ctl("--json history " + plain_id));
  EXPECT_NE(none_json.out.find(",\"steps\":[]}\n"), std::string::npos) << none_json.out;
  EXPECT_EQ(run(ctl("history")).status, 2);
  Output unknown = run(ctl("history 0123"));
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.out.find("not_found: no call has ID 0123"), std::string::npos) << unknown.out;
}

TEST_F(Dispatchd, EndedCallsAreDeletedAfterTheRetention) {
  Output d = run(ctl("dispatch durable.record --type durable.RecordRequest --input-hex 6869 "
                     "--idempotency-key order-1 --endpoint " + ep_url_));
  ASSERT_EQ(d.status, 0) << d.out;
  const std::string id = d.out.substr(0, d.out.find('\n'));
  Output status = run(ctl("status " + id + " --wait-ms 20000"));
  ASSERT_NE(status.out.find("state        completed"), std::string::npos) << status.out;

  // The same database under a one-second window: the call goes.
  stop_scheduler();
  start_scheduler({"--retention", "1s"});
  for (int i = 0; i < 500 && !port_open(api_port_); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(port_open(api_port_));
  Output gone;
  for (int i = 0; i < 200; ++i) {
    gone = run(ctl("status " + id));
    if (gone.status != 0) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(gone.status, 1) << gone.out;
  EXPECT_NE(gone.out.find("dispatchctl: not_found: no call has ID " + id +
                          ": it was never dispatched to this scheduler, or it ended more than 1s ago "
                          "and was deleted (retention)"),
            std::string::npos)
      << gone.out;
  // Its key went with it: the same key makes a new call.
  Output again = run(ctl("dispatch durable.record --type durable.RecordRequest --input-hex 6869 "
                         "--idempotency-key order-1 --endpoint " + ep_url_));
  ASSERT_EQ(again.status, 0) << again.out;
  EXPECT_NE(again.out.substr(0, again.out.find('\n')), id);
  Output log = run("cat " + dir_ + "dispatchd.log");
  EXPECT_NE(log.out.find("deleting calls 1s after they end (--retention)"), std::string::npos) << log.out;
  EXPECT_NE(log.out.find("deleted 1 calls that ended more than 1s ago"), std::string::npos) << log.out;
}

TEST(DispatchdFlags, RetentionIsParsedAndBadValuesAreRefused) {
  const std::string db = ::testing::TempDir() + "dispatchd_flags_" + std::to_string(::getpid()) + ".db";
  // --help last: a value taken by mistake ends the run too, instead of
  // leaving a scheduler serving.
  auto dispatchd = [&](const std::string& retention) {
    return run(std::string(DISPATCHD) + " --db " + db + " --listen 127.0.0.1:0 --retention '" + retention +
               "' --help");
  };
  for (const char* bad : {"", "7", "7x", "d", "-1d", "1.5d", "7 d", "d7"}) {
    Output r = dispatchd(bad);
    EXPECT_EQ(r.status, 2) << bad << ": " << r.out;
    EXPECT_EQ(r.out, std::string("dispatchd: --retention needs a duration such as 7d, 36h, 90m or 45s (0 keeps "
                                 "calls forever), got '") + bad + "'\n");
  }
  Output huge = dispatchd("99999999999999999d");
  EXPECT_EQ(huge.status, 2);
  EXPECT_EQ(huge.out, "dispatchd: --retention 99999999999999999d is too long; 0 keeps calls forever\n");
  Output missing = run(std::string(DISPATCHD) + " --retention");
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.out.find("--retention needs a value"), std::string::npos) << missing.out;
  // Flags are read in order: a good value lets --help, after it, answer.
  for (const char* good : {"0", "45s", "90m", "36h", "7d", "3650d"}) {
    Output r = dispatchd(good);
    EXPECT_EQ(r.status, 0) << good << ": " << r.out;
    EXPECT_NE(r.out.find("--retention DURATION"), std::string::npos);
  }
  for (const char* suffix : {"", "-wal", "-shm", "-owner"}) std::remove((db + suffix).c_str());
}

TEST(DispatchdFlags, ALeaseNotLongerThanTheRunTimeIsRefused) {
  const std::string db = ::testing::TempDir() + "dispatchd_lease_" + std::to_string(::getpid()) + ".db";
  const std::string base = std::string(DISPATCHD) + " --db " + db + " --listen 127.0.0.1:0 ";
  Output short_lease = run(base + "--lease 1s");
  EXPECT_EQ(short_lease.status, 2) << short_lease.out;
  EXPECT_EQ(short_lease.out,
            "dispatchd: --lease (1000 ms) must be longer than the run timeout (300000 ms, --run-timeout-ms): a call "
            "still running would be delivered twice\n");
  Output equal = run(base + "--run-timeout-ms 60000 --lease 1m");
  EXPECT_EQ(equal.status, 2) << equal.out;
  Output bad = run(base + "--lease 5x");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.out.find("--lease needs a duration"), std::string::npos) << bad.out;
  // Long enough: parsed, and --help after it answers.
  Output good = run(base + "--run-timeout-ms 10000 --lease 30s --help");
  EXPECT_EQ(good.status, 0) << good.out;
  EXPECT_NE(good.out.find("--lease DURATION"), std::string::npos);
  for (const char* suffix : {"", "-wal", "-shm", "-owner"}) std::remove((db + suffix).c_str());
}

// An expiration or a run timeout of 0 is refused: dispatchd started with
// either and failed every call without an expiration of its own at once
// ("expired before it could complete (0 attempts made)"), or timed every
// Run out after 0 ms, while 0 means "no limit" for --max-attempts and
// "forever" for --retention.
TEST(DispatchdFlags, AZeroExpirationOrRunTimeoutIsRefused) {
  const std::string db = ::testing::TempDir() + "dispatchd_zero_" + std::to_string(::getpid()) + ".db";
  const std::string base = std::string(DISPATCHD) + " --db " + db + " --listen 127.0.0.1:0 ";
  const std::vector<std::pair<std::string, std::string>> bad{
      {"--expiration-ms 0",
       "--expiration-ms must be at least 1 (0 would fail every call without an expiration of its own at once, "
       "expired)"},
      {"--run-timeout-ms 0", "--run-timeout-ms must be at least 1 (0 would time every Run call out at once)"},
      {"--policy shop.pay:expiration-ms=0",
       "--policy shop.pay: expiration-ms must be at least 1 (0 would fail every call without an expiration of "
       "its own at once, expired)"},
      {"--policy shop.pay:run-timeout-ms=0",
       "--policy shop.pay: run-timeout-ms must be at least 1 (0 would time every Run call out at once)"},
  };
  for (const auto& [flags, message] : bad) {
    Output r = run(base + flags + " --help");
    EXPECT_EQ(r.status, 2) << flags << ": " << r.out;
    EXPECT_EQ(r.out, "dispatchd: " + message + "\n") << flags;
  }
  Output good = run(base + "--expiration-ms 1 --run-timeout-ms 1 --policy shop.pay:expiration-ms=1,run-timeout-ms=1 "
                           "--help");
  EXPECT_EQ(good.status, 0) << good.out;
  for (const char* suffix : {"", "-wal", "-shm", "-owner"}) std::remove((db + suffix).c_str());
}

// --policy FUNCTION:KEY=VALUE,... (and DISPATCH_POLICIES): what is not
// that shape, an unknown setting, a bad number, and a function's run
// timeout the lease does not exceed are refused, naming what was wrong.
TEST(DispatchdFlags, PoliciesAreParsedAndBadOnesRefused) {
  const std::string db = ::testing::TempDir() + "dispatchd_policy_" + std::to_string(::getpid()) + ".db";
  const std::string base = std::string(DISPATCHD) + " --db " + db + " --listen 127.0.0.1:0 ";
  const std::string keys = "(keys max-attempts, min-backoff-ms, max-backoff-ms, expiration-ms, run-timeout-ms)";
  const std::vector<std::pair<std::string, std::string>> bad{
      {"shop.pay", "--policy needs FUNCTION:KEY=VALUE[,KEY=VALUE...] " + keys + ", got 'shop.pay'"},
      {"shop.pay:", "--policy needs FUNCTION:KEY=VALUE[,KEY=VALUE...] " + keys + ", got 'shop.pay:'"},
      {":max-attempts=3", "--policy needs FUNCTION:KEY=VALUE[,KEY=VALUE...] " + keys + ", got ':max-attempts=3'"},
      {"shop.pay:max-attempts", "--policy shop.pay: max-attempts needs a value (KEY=VALUE)"},
      {"shop.pay:max-attempts=-1", "--policy shop.pay: max-attempts needs a non-negative number, got '-1'"},
      {"shop.pay:min-backoff-ms=5,max-backoff-ms=1s",
       "--policy shop.pay: max-backoff-ms needs a non-negative number, got '1s'"},
      {"shop.pay:max-attempts=4294967296", "--policy shop.pay: max-attempts 4294967296 is too large (at most 4294967295)"},
      {"shop.pay:retries=3", "--policy shop.pay: unknown setting 'retries' " + keys},
  };
  for (const auto& [spec, message] : bad) {
    Output r = run(base + "--policy '" + spec + "' --help");
    EXPECT_EQ(r.status, 2) << spec << ": " << r.out;
    EXPECT_EQ(r.out, "dispatchd: " + message + "\n") << spec;
  }
  // The counts given as flags of their own are held to their type's range
  // too, not wrapped (5000000000 would be 705032704 attempts).
  for (const char* flag : {"--max-attempts", "--statefun-max-attempts"}) {
    Output r = run(base + flag + " 5000000000 --help");
    EXPECT_EQ(r.status, 2) << flag << ": " << r.out;
    EXPECT_EQ(r.out, std::string("dispatchd: ") + flag + " 5000000000 is too large (at most 4294967295)\n");
    Output fits = run(base + flag + " 4294967295 --help");
    EXPECT_EQ(fits.status, 0) << flag << ": " << fits.out;
  }
  Output replicas = run(base + "--nats-replicas 4294967299 --help");
  EXPECT_EQ(replicas.status, 2) << replicas.out;
  EXPECT_EQ(replicas.out, "dispatchd: --nats-replicas 4294967299 is too large (at most 2147483647)\n");
  Output from_env = run("DISPATCH_POLICIES='a.b:max-attempts=1;c.d:nope=2' " + base + "--help");
  EXPECT_EQ(from_env.status, 2) << from_env.out;
  EXPECT_EQ(from_env.out, "dispatchd: DISPATCH_POLICIES c.d: unknown setting 'nope' " + keys + "\n");
  Output long_run = run(base + "--lease 1m --run-timeout-ms 30000 --policy 'shop.pay:run-timeout-ms=60000'");
  EXPECT_EQ(long_run.status, 2) << long_run.out;
  EXPECT_EQ(long_run.out,
            "dispatchd: --lease (60000 ms) must be longer than shop.pay's run timeout (60000 ms, --policy): a call "
            "still running would be delivered twice\n");
  Output good = run(base + "--policy 'shop.pay:max-attempts=0,min-backoff-ms=5,max-backoff-ms=50,expiration-ms=1000,"
                           "run-timeout-ms=100' --help");
  EXPECT_EQ(good.status, 0) << good.out;
  EXPECT_NE(good.out.find("--policy FUNCTION:KEY=VALUE"), std::string::npos);
  for (const char* suffix : {"", "-wal", "-shm", "-owner"}) std::remove((db + suffix).c_str());
}

// A function's own policy applies to its calls only: two functions whose
// endpoint does not answer are given up after their own number of
// attempts (4 for durable.patient by --policy, dispatchd's 2 for the
// other), and dispatchd logs the policy it took.
TEST_F(Dispatchd, APolicyGivesOneFunctionItsOwnAttempts) {
  stop_scheduler();
  start_scheduler({"--policy", "durable.patient:max-attempts=4,min-backoff-ms=5"});
  for (int i = 0; i < 500 && !port_open(api_port_); ++i) std::this_thread::sleep_for(10ms);
  auto client = api("k1");
  dispatch::DispatchClient dc(*client, ep_url_);
  dispatch::DispatchOptions o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(free_port());
  auto patient = dc.dispatch("durable.patient", "durable.RecordRequest", "", o);
  auto other = dc.dispatch("durable.record", "durable.RecordRequest", "", o);
  ASSERT_TRUE(patient.ok() && other.ok());
  auto r = dc.await_result(*patient, 20s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("gave up after 4 attempts"), std::string::npos) << r.error().what();
  r = dc.await_result(*other, 20s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("gave up after 2 attempts"), std::string::npos) << r.error().what();
  std::ifstream log(dir_ + "dispatchd.log");
  const std::string logged((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(logged.find("policy of durable.patient: max attempts 4, backoff 5-60000 ms, expiration 86400000 ms, "
                        "run timeout 300000 ms (--policy)"),
            std::string::npos)
      << logged;
}

// With DISPATCH_LOG_FORMAT=json every line dispatchd writes is a JSON
// object, protobuf's own too: a request whose string is not UTF-8 made
// libprotobuf write "[libprotobuf ERROR ...] String field ... contains
// invalid UTF-8 data" to stderr in its own shape, once per such request.
TEST_F(Dispatchd, ProtobufsOwnLinesAreJsonLinesToo) {
  stop_scheduler();
  start_scheduler({}, {{"DISPATCH_LOG_FORMAT", "json"}}, "dispatchd.json.log");
  for (int i = 0; i < 500 && !port_open(api_port_); ++i) std::this_thread::sleep_for(10ms);
  auto client = api("k1");
  const std::string not_utf8("\x0a\x01\xff", 3);  // GetRequest.id = "\xff"
  for (int i = 0; i < 3; ++i) {
    auto r = client->call("/dispatch.scheduler.v1.AdminService/Get", not_utf8, {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), dispatch::Code::invalid_argument) << r.error().what();
  }
  // Each line is one write(2), so what is there now is whole lines.
  std::ifstream log(dir_ + "dispatchd.json.log");
  int lines = 0, protobuf_lines = 0;
  for (std::string line; std::getline(log, line);) {
    ++lines;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not a JSON object: " << line;
    const std::string message = j.value("message", "");
    if (message.rfind("protobuf: ", 0) == 0) {
      ++protobuf_lines;
      EXPECT_EQ(j.value("level", ""), "warn") << line;
      EXPECT_NE(message.find("String field 'dispatch.scheduler.v1.GetRequest.id' contains invalid UTF-8"),
                std::string::npos)
          << line;
    }
  }
  EXPECT_GT(lines, 3);
  EXPECT_EQ(protobuf_lines, 1) << "the same text is written once per 10 s";
}

// Every way dispatchctl prints, in text and JSON, answers and errors alike,
// ends its output with one newline.
TEST_F(Dispatchd, DispatchctlOutputEndsWithANewline) {
  const std::string dispatch_cmd = "dispatch durable.record --type durable.RecordRequest --input-hex 6869 --endpoint ";
  Streams d = run_apart(ctl(dispatch_cmd + ep_url_), dir_);
  ASSERT_EQ(d.status, 0) << d.err;
  const std::string id = d.out.substr(0, d.out.find('\n'));
  EXPECT_TRUE(one_final_newline(d.out));
  ASSERT_EQ(run(ctl("status " + id + " --wait-ms 20000")).status, 0);
  // A failed call, for retry.
  Streams f = run_apart(ctl(dispatch_cmd + "http://127.0.0.1:" + std::to_string(free_port())), dir_);
  ASSERT_EQ(f.status, 0) << f.err;
  const std::string failed = f.out.substr(0, f.out.find('\n'));
  Output waited = run(ctl("status " + failed + " --wait-ms 20000"));
  ASSERT_NE(waited.out.find("state        failed"), std::string::npos) << waited.out;

  struct Case {
    std::string args;
    int status;
  };
  const Case answers[] = {
      {"list", 0},
      {"--json list", 0},
      {"list completed --limit 1", 0},
      {"list cancelled", 0},  // none: the header line alone
      {"--json list cancelled", 0},
      {"status " + id, 0},
      {"--json status " + id, 0},
      {"--json " + dispatch_cmd + ep_url_, 0},
      {"--json retry " + failed, 0},
  };
  for (const Case& c : answers) {
    Streams r = run_apart(ctl(c.args), dir_);
    EXPECT_EQ(r.status, c.status) << c.args << ": " << r.err;
    EXPECT_TRUE(one_final_newline(r.out)) << c.args;
    EXPECT_EQ(r.err, "") << c.args;
  }
  ASSERT_EQ(run(ctl("status " + failed + " --wait-ms 20000")).status, 0);
  Streams retried = run_apart(ctl("retry " + failed), dir_);
  EXPECT_EQ(retried.status, 0) << retried.err;
  EXPECT_TRUE(one_final_newline(retried.out));

  const Case errors[] = {
      {"cancel " + id, 1},  // already completed
      {"--json cancel " + id, 1},
      {"status 0123", 1},
      {"--json status 0123", 1},
      {"list sideways", 2},
      {"list --limit x", 2},
      {"status", 2},
      {"frobnicate", 2},
      {"", 2},
      {"dispatch durable.record", 2},
  };
  for (const Case& c : errors) {
    Streams r = run_apart(ctl(c.args), dir_);
    EXPECT_EQ(r.status, c.status) << c.args << ": " << r.err;
    EXPECT_EQ(r.out, "") << c.args;
    EXPECT_TRUE(one_final_newline(r.err)) << c.args;
  }
  const std::string nobody = "http://127.0.0.1:" + std::to_string(free_port());
  Streams unreachable = run_apart(std::string(DISPATCHCTL) + " --url " + nobody + " list", dir_);
  EXPECT_EQ(unreachable.status, 1);
  EXPECT_TRUE(one_final_newline(unreachable.err));
  // What to check: dispatchd not running there, or not a dispatchd there
  // (the endpoint serves functions, not the scheduler's API).
  EXPECT_NE(unreachable.err.find("(is dispatchd running at " + nobody +
                                 "? give its address with --url or DISPATCH_API_URL)"),
            std::string::npos)
      << unreachable.err;
  Streams not_dispatchd = run_apart(std::string(DISPATCHCTL) + " --url " + ep_url_ + " list", dir_);
  EXPECT_EQ(not_dispatchd.status, 1);
  EXPECT_NE(not_dispatchd.err.find("(is " + ep_url_ + " a dispatchd? the server there does not serve the scheduler's API)"),
            std::string::npos)
      << not_dispatchd.err;
  Streams help = run_apart(std::string(DISPATCHCTL) + " --help", dir_);
  EXPECT_EQ(help.status, 0);
  EXPECT_TRUE(one_final_newline(help.out));
}

// A mistyped option is refused before the command runs: the call it names
// is left as it was.
TEST_F(Dispatchd, DispatchctlRefusesUnknownOptionsBeforeActing) {
  Streams f = run_apart(ctl("dispatch durable.record --type durable.RecordRequest --endpoint http://127.0.0.1:" +
                            std::to_string(free_port())),
                        dir_);
  ASSERT_EQ(f.status, 0) << f.err;
  const std::string failed = f.out.substr(0, f.out.find('\n'));
  ASSERT_NE(run(ctl("status " + failed + " --wait-ms 20000")).out.find("state        failed"), std::string::npos);
  Streams typo = run_apart(ctl("retry " + failed + " --wiat-ms 5"), dir_);
  EXPECT_EQ(typo.status, 2);
  EXPECT_EQ(typo.out, "");
  EXPECT_NE(typo.err.find("unknown option '--wiat-ms' for retry"), std::string::npos) << typo.err;
  Output after = run(ctl("status " + failed));
  EXPECT_NE(after.out.find("state        failed"), std::string::npos) << after.out;
  EXPECT_EQ(run(ctl("list --limt 5")).status, 2);
}

// --cors-origin (and DISPATCH_CORS_ORIGINS): a page of that origin may call
// the API from a browser, a page of another gets no CORS fields; a
// preflight needs no key (browsers send none), the call itself still does.
TEST_F(Dispatchd, CorsOriginsLetThosePagesCallTheApi) {
  stop_scheduler();
  start_scheduler({"--cors-origin", "https://app.example.com"}, {{"DISPATCH_CORS_ORIGINS", "http://localhost:5173"}});
  for (int i = 0; i < 500 && !port_open(api_port_); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(port_open(api_port_));
  const std::string path = api_url_ + "/dispatch.sdk.v1.DispatchService/Dispatch";
  auto preflight = [&](const std::string& origin) {
    return run("curl -s -i -X OPTIONS -H 'Origin: " + origin +
               "' -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: "
               "authorization,content-type' " +
               path);
  };
  for (const char* origin : {"https://app.example.com", "http://localhost:5173"}) {
    Output allowed = preflight(origin);
    EXPECT_NE(allowed.out.find("HTTP/1.1 204"), std::string::npos) << origin << ": " << allowed.out;
    EXPECT_NE(allowed.out.find(std::string("Access-Control-Allow-Origin: ") + origin), std::string::npos)
        << allowed.out;
  }
  Output other = preflight("https://evil.example.com");
  EXPECT_EQ(other.out.find("Access-Control-Allow-Origin"), std::string::npos) << other.out;
  // The call: an empty Dispatch without the key is refused, with the CORS
  // fields, so the page can read why.
  Output call = run("curl -s -i -X POST -H 'Origin: https://app.example.com' -H 'Content-Type: application/json' "
                    "--data '{}' " +
                    path);
  EXPECT_NE(call.out.find("HTTP/1.1 401"), std::string::npos) << call.out;
  EXPECT_NE(call.out.find("Access-Control-Allow-Origin: https://app.example.com"), std::string::npos) << call.out;
}

TEST(DispatchdFlags, BadCorsOriginsAreRefused) {
  const std::string base = std::string(DISPATCHD) + " --db " + ::testing::TempDir() + "dispatchd_cors_" +
                           std::to_string(::getpid()) + ".db --listen 127.0.0.1:0 ";
  Output path = run(base + "--cors-origin https://app.example.com/page --help");
  EXPECT_EQ(path.status, 2);
  EXPECT_EQ(path.out,
            "dispatchd: --cors-origin: 'https://app.example.com/page' is not an origin (scheme://host[:port], no "
            "path) or *\n");
  Output two = run(base + "--cors-origin 'https://a.example.com,https://b.example.com' --help");
  EXPECT_EQ(two.status, 2);
  EXPECT_EQ(two.out, "dispatchd: --cors-origin takes one origin, got 'https://a.example.com,https://b.example.com'\n");
  Output env = run("DISPATCH_CORS_ORIGINS=app.example.com " + base + "--help");
  EXPECT_EQ(env.status, 2);
  EXPECT_NE(env.out.find("DISPATCH_CORS_ORIGINS: 'app.example.com' is not an origin"), std::string::npos) << env.out;
  EXPECT_EQ(run(base + "--cors-origin https://app.example.com --help").status, 0);
}

}  // namespace
