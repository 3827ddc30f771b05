// The Run route: status for each outcome, context passed through, the
// exception registry, and the status tables.
#include "dispatch/durable/function_service.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <stdexcept>
#include <system_error>

#include "dispatch/core/in_process.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "durable/protocol.h"

namespace dispatch {
namespace {


struct Transient : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct VeryTransient : Transient {
  using Transient::Transient;
};

Result<std::string> echo(const MethodCall& call) { return std::string(call.request); }
Result<std::string> context(const MethodCall&) {
  return this_call().dispatch_id + "#" + std::to_string(this_call().attempt);
}
Result<std::string> trace(const MethodCall&) { return this_call().trace.trace_id_hex(); }
Result<std::string> unavailable(const MethodCall&) { throw Error(Code::unavailable, "db down"); }
Result<std::string> crashes(const MethodCall&) { throw std::runtime_error("boom"); }
Result<std::string> transient(const MethodCall&) { throw VeryTransient("try later"); }

const Method kMethods[] = {
    {"echo", "/t.T/echo", "t.EchoRequest", "t.EchoResponse", &echo},
    {"context", "/t.T/context", "t.ContextRequest", "t.ContextResponse", &context},
    {"trace", "/t.T/trace", "t.TraceRequest", "t.TraceResponse", &trace},
    {"unavailable", "/t.T/unavailable", "t.UnavailableRequest", "t.UnavailableResponse", &unavailable},
    {"crashes", "/t.T/crashes", "t.CrashesRequest", "t.CrashesResponse", &crashes},
    {"transient", "/t.T/transient", "t.TransientRequest", "t.TransientResponse", &transient},
};
const Service kService{"t", "T", kMethods, std::size(kMethods), {}};

std::string run_request(std::string function, std::string type, std::string value,
                        std::string dispatch_id = "d-1") {
  sdk::v1::RunRequest req;
  req.set_function(std::move(function));
  protocol::pack_any(type, std::move(value), req.mutable_input());
  req.set_dispatch_id(std::move(dispatch_id));
  return req.SerializeAsString();
}

// What the Run route answers: an error is the HTTP call's own.
Result<std::string> invoke_run(const DispatchTable& table, const std::string& body, uint32_t attempt = 1,
                               const Logger* logger = nullptr, TraceContext trace = {}) {
  const Method* m = table.find(kRunPath);
  EXPECT_NE(m, nullptr);
  CallContext ctx;
  ctx.attempt = attempt;
  ctx.logger = logger;
  ctx.trace = std::move(trace);
  return table.invoke(*m, body, ctx);
}

sdk::v1::RunResponse run(const DispatchTable& table, const std::string& body, uint32_t attempt = 1,
                         const Logger* logger = nullptr, TraceContext trace = {}) {
  auto out = invoke_run(table, body, attempt, logger, std::move(trace));
  EXPECT_TRUE(out.ok()) << (out.ok() ? "" : out.error().what());
  sdk::v1::RunResponse res;
  EXPECT_TRUE(res.ParseFromString(out.value()));
  return res;
}

TEST(FunctionService, RunsTheFunctionAndPacksItsOutput) {
  DispatchTable table{&kService, &function_service()};
  auto res = run(table, run_request("t.echo", "t.EchoRequest", "payload"));
  EXPECT_EQ(res.status(), sdk::v1::STATUS_OK);
  EXPECT_EQ(res.exit().result().output().type_url(), "type.googleapis.com/t.EchoResponse");
  EXPECT_EQ(res.exit().result().output().value(), "payload");
  EXPECT_FALSE(res.exit().result().has_error());
  // Short names work when unique.
  EXPECT_EQ(run(table, run_request("echo", "t.EchoRequest", "x")).status(), sdk::v1::STATUS_OK);
}

// The server places and times a Run call by the function it names
// (Method::runs), read off the wire without decoding the input.
TEST(FunctionService, RunNamesTheFunctionItRunsFromTheRequestBytes) {
  const DispatchTable table{&kService, &function_service()};
  const Method* run = table.find(kRunPath);
  ASSERT_NE(run, nullptr);
  ASSERT_NE(run->runs, nullptr);
  EXPECT_EQ(run->runs(table, run_request("t.crashes", "t.CrashesRequest", std::string(100000, 'x'))), &kMethods[4]);
  EXPECT_EQ(run->runs(table, run_request("echo", "t.EchoRequest", "")), &kMethods[0]);
  // The input first, the name after it; the last name given counts.
  sdk::v1::RunRequest later;
  protocol::pack_any("t.EchoRequest", "hi", later.mutable_input());
  later.set_function("t.trace");
  EXPECT_EQ(run->runs(table, later.SerializeAsString() + run_request("context", "t.ContextRequest", "")),
            &kMethods[1]);
  for (const std::string& none : {run_request("nope", "t.EchoRequest", ""), run_request("Run", "x", ""),
                                  std::string(), std::string("\x0a\x05" "ec"), std::string("garbage")}) {
    EXPECT_EQ(run->runs(table, none), nullptr) << none;
  }
  EXPECT_EQ(kMethods[0].runs, nullptr);
}

TEST(FunctionService, EveryGeneratedServiceBringsOneRunRoute) {
  const Service a{"a", "A", kMethods, 1, {}, &function_service()};
  const Service b{"b", "B", kMethods + 1, 1, {}, &function_service()};
  DispatchTable table{&a, &b, &function_service()};
  EXPECT_EQ(table.services().size(), 3u);
  EXPECT_EQ(run(table, run_request("b.context", "t.ContextRequest", "", "x")).status(), sdk::v1::STATUS_OK);
}

TEST(FunctionService, FunctionSeesDispatchIdAndAttempt) {
  DispatchTable table{&kService, &function_service()};
  auto res = run(table, run_request("context", "t.ContextRequest", "", "abc"), 3);
  EXPECT_EQ(res.exit().result().output().value(), "abc#3");
}

TEST(FunctionService, TheFunctionRunsInTheRunCallsTrace) {
  DispatchTable table{&kService, &function_service()};
  auto trace = start_call_trace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", std::nullopt);
  auto res = run(table, run_request("trace", "t.TraceRequest", ""), 1, nullptr, trace);
  EXPECT_EQ(res.exit().result().output().value(), "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(FunctionService, LogsTheDurableCallWhereTheCallIsServed) {
  DispatchTable table{&kService, &function_service()};
  std::vector<std::string> lines;
  const Logger logger(LogLevel::info, [&](LogLevel, std::string_view line) { lines.emplace_back(line); });
  run(table, run_request("t.echo", "t.EchoRequest", "x", "d-7"), 2, &logger);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("executing: t.echo (dispatch id d-7, attempt 2) -> ok in ", 0), 0u) << lines[0];
  // Served by no server (in process, no logger): nothing to log to.
  run(table, run_request("t.echo", "t.EchoRequest", "x"));
  EXPECT_EQ(lines.size(), 1u);
}

// The spec: "Errors before a function runs: HTTP status plus JSON body ...
// 404 not_found (unknown function)", as the Python SDK's endpoint answers.
TEST(FunctionService, UnknownFunctionIsNotFoundBeforeItRuns) {
  DispatchTable table{&kService, &function_service()};
  auto res = invoke_run(table, run_request("t.nope", "t.NopeRequest", ""));
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code(), Code::not_found);
  EXPECT_NE(res.error().message().find("'t.nope' is not registered"), std::string::npos) << res.error().message();
  // Run cannot be targeted through itself.
  auto itself = invoke_run(table, run_request("Run", "dispatch.sdk.v1.RunRequest", ""));
  ASSERT_FALSE(itself.ok());
  EXPECT_EQ(itself.error().code(), Code::not_found);
}

TEST(FunctionService, WrongInputTypeIsInvalidArgument) {
  DispatchTable table{&kService, &function_service()};
  auto res = run(table, run_request("t.echo", "t.OtherRequest", ""));
  EXPECT_EQ(res.status(), sdk::v1::STATUS_INVALID_ARGUMENT);
  const std::string& msg = res.exit().result().error().message();
  EXPECT_NE(msg.find("takes t.EchoRequest"), std::string::npos) << msg;
  EXPECT_NE(msg.find("type.googleapis.com/t.OtherRequest"), std::string::npos) << msg;
}

TEST(FunctionService, MissingInputOrFunctionIsInvalidArgument) {
  DispatchTable table{&kService, &function_service()};
  sdk::v1::RunRequest req;
  req.set_function("t.echo");
  EXPECT_EQ(run(table, req.SerializeAsString()).status(), sdk::v1::STATUS_INVALID_ARGUMENT);
  // No function named: a malformed request, 400 before anything runs.
  auto unnamed = invoke_run(table, run_request("", "t.EchoRequest", ""));
  ASSERT_FALSE(unnamed.ok());
  EXPECT_EQ(unnamed.error().code(), Code::invalid_argument);
}

TEST(FunctionService, APollResultForAFunctionThatIsNotAWorkflowIsInvalid) {
  DispatchTable table{&kService, &function_service()};
  sdk::v1::RunRequest req;
  req.set_function("t.echo");
  req.mutable_poll_result();
  auto res = run(table, req.SerializeAsString());
  EXPECT_EQ(res.status(), sdk::v1::STATUS_INVALID_ARGUMENT);
  EXPECT_NE(res.exit().result().error().message().find("'t.echo' is not a workflow"), std::string::npos)
      << res.exit().result().error().message();
}

// A function that speaks the protocol itself (a workflow's Run entry) gets
// the whole RunRequest, with its IDs in this_call(), and answers it.
Result<std::string> answers_poll(const MethodCall& call) {
  sdk::v1::RunRequest req;
  EXPECT_TRUE(req.ParseFromArray(call.request.data(), static_cast<int>(call.request.size())));
  EXPECT_EQ(this_call().dispatch_id, req.dispatch_id());
  sdk::v1::RunResponse res;
  res.set_status(sdk::v1::STATUS_OK);
  res.mutable_poll()->set_coroutine_state(std::string(call.service.name) + "|" + this_call().parent_dispatch_id +
                                          "|" + this_call().root_dispatch_id + "|" +
                                          (req.has_poll_result() ? req.poll_result().coroutine_state() : "first"));
  return res.SerializeAsString();
}
Result<std::string> run_fails(const MethodCall&) { throw Error(Code::unavailable, "journal store down"); }
const Method kWorkflows[] = {
    {"wf", "/w.W/wf", "w.WfRequest", "w.WfResponse", &echo, nullptr, &answers_poll},
    {"flaky", "/w.W/flaky", "w.FlakyRequest", "w.FlakyResponse", &echo, nullptr, &run_fails},
};
const Service kWorkflowService{"w", "W", kWorkflows, 2, {}, &function_service()};

TEST(FunctionService, AFunctionWithARunEntryAnswersTheWholeRunRequest) {
  DispatchTable table{&kWorkflowService};  // brings the Run route along
  sdk::v1::RunRequest first;
  first.set_function("w.wf");
  protocol::pack_any("w.WfRequest", "", first.mutable_input());
  first.set_dispatch_id("d-9");
  first.set_parent_dispatch_id("p-1");
  first.set_root_dispatch_id("r-0");
  auto res = run(table, first.SerializeAsString());
  EXPECT_EQ(res.status(), sdk::v1::STATUS_OK);
  EXPECT_EQ(res.poll().coroutine_state(), "FunctionService|p-1|r-0|first");
  // Resumed with its state.
  sdk::v1::RunRequest again = first;
  again.mutable_poll_result()->set_coroutine_state("s1");
  EXPECT_EQ(run(table, again.SerializeAsString()).poll().coroutine_state(), "FunctionService|p-1|r-0|s1");
  // Its input type is checked like any function's.
  protocol::pack_any("w.OtherRequest", "", first.mutable_input());
  EXPECT_EQ(run(table, first.SerializeAsString()).status(), sdk::v1::STATUS_INVALID_ARGUMENT);
  // What it throws is a status, as for any function.
  auto flaky = run(table, run_request("w.flaky", "w.FlakyRequest", ""));
  EXPECT_EQ(flaky.status(), sdk::v1::STATUS_TEMPORARY_ERROR);
  EXPECT_EQ(flaky.exit().result().error().message(), "journal store down");
}

TEST(FunctionService, MalformedBodyIsAnInvalidArgumentError) {
  DispatchTable table{&kService, &function_service()};
  InProcessClient client(table);
  auto out = client.call(kRunPath, std::string("\xff\xff\xff", 3), {});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code(), Code::invalid_argument);
}

TEST(FunctionService, ErrorsMapToStatuses) {
  DispatchTable table{&kService, &function_service()};
  auto res = run(table, run_request("unavailable", "t.UnavailableRequest", ""));
  EXPECT_EQ(res.status(), sdk::v1::STATUS_TEMPORARY_ERROR);
  EXPECT_EQ(res.exit().result().error().type(), "unavailable");
  EXPECT_EQ(res.exit().result().error().message(), "db down");
  res = run(table, run_request("crashes", "t.CrashesRequest", ""));
  EXPECT_EQ(res.status(), sdk::v1::STATUS_PERMANENT_ERROR);
  EXPECT_EQ(res.exit().result().error().message(), "boom");
}

TEST(FunctionService, UserExceptionTypesAreRegisteredPerTable) {
  DispatchTable plain{&kService, &function_service()};
  EXPECT_EQ(run(plain, run_request("transient", "t.TransientRequest", "")).status(),
            sdk::v1::STATUS_PERMANENT_ERROR);

  DispatchTable mapped{&kService, &function_service()};
  mapped.map_exception<Transient>(Code::unavailable);  // matches the derived type too
  auto res = run(mapped, run_request("transient", "t.TransientRequest", ""));
  EXPECT_EQ(res.status(), sdk::v1::STATUS_TEMPORARY_ERROR);
  EXPECT_EQ(res.exit().result().error().message(), "try later");

  DispatchTable first_wins{&kService, &function_service()};
  first_wins.map_exception<VeryTransient>(Code::resource_exhausted);
  first_wins.map_exception<Transient>(Code::unavailable);
  EXPECT_EQ(run(first_wins, run_request("transient", "t.TransientRequest", "")).status(),
            sdk::v1::STATUS_THROTTLED);
}

TEST(FunctionService, ServiceDescribesItself) {
  const Service& s = function_service();
  EXPECT_STREQ(s.package, "dispatch.sdk.v1");
  ASSERT_EQ(s.method_count, 1u);
  EXPECT_EQ(std::string_view(s.methods[0].path), kRunPath);
  EXPECT_FALSE(s.file_descriptor.empty());
}

TEST(StatusTables, CodesAndHttp) {
  EXPECT_EQ(run_status_for(Code::deadline_exceeded), RunStatus::timeout);
  EXPECT_EQ(run_status_for(Code::resource_exhausted), RunStatus::throttled);
  EXPECT_EQ(run_status_for(Code::internal), RunStatus::permanent_error);
  EXPECT_EQ(run_status_for(Code::invalid_argument), RunStatus::invalid_argument);
  EXPECT_TRUE(is_temporary(RunStatus::tcp_error));
  EXPECT_TRUE(is_temporary(RunStatus::incompatible_state));
  EXPECT_FALSE(is_temporary(RunStatus::permanent_error));
  EXPECT_FALSE(is_temporary(RunStatus::not_found));
  EXPECT_EQ(run_status_name(RunStatus::throttled), "STATUS_THROTTLED");
  EXPECT_EQ(protocol::status_for_http(429), RunStatus::throttled);
  EXPECT_EQ(protocol::status_for_http(501), RunStatus::permanent_error);
  EXPECT_EQ(protocol::status_for_http(503), RunStatus::temporary_error);
  EXPECT_EQ(protocol::status_for_http(408), RunStatus::timeout);
  EXPECT_EQ(protocol::status_for_http(418), RunStatus::permanent_error);
  EXPECT_EQ(protocol::status_for_transport_error(Error(Code::unavailable, "refused")),
            RunStatus::tcp_error);
  // Replies without a Connect body, as HttpClient words them.
  EXPECT_EQ(protocol::status_for_transport_error(Error(Code::unavailable, "HTTP 429 with an empty body")),
            RunStatus::throttled);
  EXPECT_EQ(protocol::status_for_transport_error(Error(Code::unknown, "HTTP 501 with an empty body")),
            RunStatus::permanent_error);
  EXPECT_EQ(protocol::status_for_transport_error(Error(Code::unavailable, "HTTP 503 with a body that is not a Connect error: x")),
            RunStatus::temporary_error);
  EXPECT_EQ(protocol::status_for_transport_error(Error(Code::unavailable, "HTTP 4290")),
            RunStatus::tcp_error);
  // Replies that are not a RunResponse, as HttpClient words them: final,
  // like a body that does not parse (they were retried, and lowered the
  // endpoint's concurrency).
  EXPECT_EQ(protocol::status_for_transport_error(
                Error(Code::internal, "reply from http://h/dispatch.sdk.v1.FunctionService/Run has Content-Type "
                                      "'text/html', not application/proto (is the URL a Connect server?)")),
            RunStatus::invalid_response);
  EXPECT_EQ(protocol::status_for_transport_error(
                Error(Code::resource_exhausted, "reply from http://h/dispatch.sdk.v1.FunctionService/Run exceeds the "
                                                "client's limit of 67108864 bytes")),
            RunStatus::invalid_response);
}

// An endpoint's Connect error reply (the code in its JSON body) is mapped
// by the HTTP status Connect gives that code, through the spec's table: a
// connect-go endpoint answering aborted (409) or canceled (499) before its
// function ran is not run again.
TEST(StatusTables, AConnectErrorReplyIsMappedByItsHttpStatus) {
  const std::pair<Code, RunStatus> table[] = {
      {Code::invalid_argument, RunStatus::invalid_argument},     // 400
      {Code::failed_precondition, RunStatus::invalid_argument},  // 400
      {Code::out_of_range, RunStatus::invalid_argument},         // 400
      {Code::unauthenticated, RunStatus::unauthenticated},       // 401
      {Code::permission_denied, RunStatus::permission_denied},   // 403
      {Code::not_found, RunStatus::not_found},                   // 404
      {Code::already_exists, RunStatus::permanent_error},        // 409
      {Code::aborted, RunStatus::permanent_error},               // 409
      {Code::resource_exhausted, RunStatus::throttled},          // 429
      {Code::canceled, RunStatus::permanent_error},              // 499
      {Code::unimplemented, RunStatus::permanent_error},         // 501
      {Code::internal, RunStatus::temporary_error},              // 500
      {Code::unknown, RunStatus::temporary_error},               // 500
      {Code::data_loss, RunStatus::temporary_error},             // 500
      // No reply, or the scheduler's deadline: retried, and they lower the
      // endpoint's concurrency.
      {Code::unavailable, RunStatus::tcp_error},
      {Code::deadline_exceeded, RunStatus::timeout},
  };
  for (const auto& [code, status] : table) {
    EXPECT_EQ(protocol::status_for_transport_error(Error(code, "the endpoint's message")), status) << code_name(code);
  }
}

}  // namespace
}  // namespace dispatch
