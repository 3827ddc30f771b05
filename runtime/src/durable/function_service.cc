// The endpoint's Run route: a RunRequest in, the target function run through
// the same DispatchTable::invoke() as a direct call, a RunResponse out.
// Protocol-level trouble the scheduler should act on (unknown function, wrong
// input type) is a RunResponse status; only a body that is not a RunRequest
// at all is an error of the HTTP call itself.
#include "dispatch/durable/function_service.h"

#include <chrono>
#include <cstdio>
#include <string>

#include <google/protobuf/descriptor.pb.h>

#include "dispatch/core/logger.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "durable/protocol.h"

namespace dispatch {
namespace {


void answer_error(sdk::v1::RunResponse* response, RunStatus status, std::string type,
                  std::string message) {
  response->set_status(static_cast<sdk::v1::Status>(status));
  sdk::v1::Error* error = response->mutable_exit()->mutable_result()->mutable_error();
  error->set_type(std::move(type));
  error->set_message(std::move(message));
}

Result<std::string> run(const MethodCall& call);

const Method kRunMethod{"Run", "/dispatch.sdk.v1.FunctionService/Run",
                        "dispatch.sdk.v1.RunRequest", "dispatch.sdk.v1.RunResponse", &run};

// The Run route of a table: finds its target among the table's functions.
Result<std::string> run(const MethodCall& call) {
  const CallContext& outer = call.context;
  sdk::v1::RunRequest req;
  if (!req.ParseFromArray(call.request.data(), static_cast<int>(call.request.size()))) {
    return Error(Code::invalid_argument,
                 "the request body is not a valid dispatch.sdk.v1.RunRequest message");
  }
  sdk::v1::RunResponse response;
  const Method* method = req.function().empty() ? nullptr : call.table.find_function(req.function());
  if (req.function().empty()) {
    answer_error(&response, RunStatus::invalid_argument, "invalid_argument",
                 "RunRequest.function is empty; name the function to run");
  } else if (method == nullptr || method == &kRunMethod) {
    answer_error(&response, RunStatus::not_found, "not_found",
                 "function '" + req.function() + "' is not registered at this endpoint" +
                     " (or its short name is ambiguous: use <package>.<name>)");
  } else if (req.directive_case() == sdk::v1::RunRequest::kPollResult) {
    // This endpoint never answers Poll, so it has no coroutine to resume;
    // INCOMPATIBLE_STATE asks the scheduler to restart from the input.
    answer_error(&response, RunStatus::incompatible_state, "incompatible_state",
                 "this endpoint does not resume coroutines; restart '" + req.function() +
                     "' from its input");
  } else if (!req.has_input()) {
    answer_error(&response, RunStatus::invalid_argument, "invalid_argument",
                 "RunRequest for '" + req.function() + "' carries no input");
  } else if (protocol::any_type(req.input()) != method->request_type) {
    answer_error(&response, RunStatus::invalid_argument, "invalid_argument",
                 "function '" + req.function() + "' takes " + method->request_type +
                     ", but the input's type URL is '" + req.input().type_url() + "'");
  } else {
    // The transport logs the route (dispatch.sdk.v1.Run); this line names
    // the function and the durable call, in the serving server's log.
    const auto started = std::chrono::steady_clock::now();
    CallContext context;
    context.deadline = outer.deadline;
    context.dispatch_id = req.dispatch_id();
    context.attempt = outer.attempt;
    context.logger = outer.logger;
    // The function runs in the Run call's trace (the scheduler sends the
    // traceparent the call was dispatched with).
    context.trace = outer.trace;
    context.function = req.function();
    auto result = call.table.invoke(*method, req.input().value(), context);
    if (outer.logger != nullptr && outer.logger->enabled(LogLevel::info)) {
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
      char took[32];
      std::snprintf(took, sizeof took, "%.2f ms", ms);
      outer.logger->log(LogLevel::info, "executing: " + req.function() + " (dispatch id " + req.dispatch_id() +
                                            ", attempt " + std::to_string(outer.attempt) + ") -> " +
                                            (result.ok() ? std::string("ok") : std::string(code_name(result.error().code()))) +
                                            " in " + took);
    }
    if (result.ok()) {
      response.set_status(sdk::v1::STATUS_OK);
      protocol::pack_any(method->response_type, std::move(result).value(),
                         response.mutable_exit()->mutable_result()->mutable_output());
    } else {
      const Error& e = result.error();
      answer_error(&response, run_status_for(e.code()), std::string(code_name(e.code())),
                   e.message());
    }
  }
  return response.SerializeAsString();
}

}  // namespace

const Service& function_service() {
  static const std::string descriptor = [] {
    google::protobuf::FileDescriptorProto file;
    sdk::v1::RunRequest::descriptor()->file()->CopyTo(&file);
    return file.SerializeAsString();
  }();
  static const Service service{"dispatch.sdk.v1", "FunctionService", &kRunMethod, 1, descriptor};
  return service;
}

}  // namespace dispatch
