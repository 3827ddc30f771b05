// The endpoint's Run route: a RunRequest in, the target function run through
// the same DispatchTable::invoke() as a direct call, a RunResponse out.
// What the protocol answers before a function runs is an error of the HTTP
// call itself, as the spec and the Python SDK have it: a body that is not a
// RunRequest or names no function (400 invalid_argument), a function this
// endpoint does not have (404 not_found). Trouble with a known function's
// request (wrong input type, a resume of a plain function) is a RunResponse
// status.
#include "dispatch/durable/function_service.h"

#include <chrono>
#include <cstdio>
#include <string>

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

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
extern const Method kRunMethod;

// The context a durable call runs with: the scheduler's IDs of it and its
// tree, and the transport's deadline, attempt and logger.
CallContext durable_context(const sdk::v1::RunRequest& req, const CallContext& outer) {
  CallContext context;
  context.deadline = outer.deadline;
  context.dispatch_id = req.dispatch_id();
  context.parent_dispatch_id = req.parent_dispatch_id();
  context.root_dispatch_id = req.root_dispatch_id();
  context.attempt = outer.attempt;
  context.logger = outer.logger;
  // The function runs in the Run call's trace (the scheduler sends the
  // traceparent the call was dispatched with).
  context.trace = outer.trace;
  context.function = req.function();
  return context;
}

// The transport logs the route (dispatch.sdk.v1.Run); this line names the
// function and the durable call, in the serving server's log.
void log_run(const CallContext& outer, const sdk::v1::RunRequest& req, std::chrono::steady_clock::time_point started,
             std::string_view outcome) {
  if (outer.logger == nullptr || !outer.logger->enabled(LogLevel::info)) return;
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  char took[32];
  std::snprintf(took, sizeof took, "%.2f ms", ms);
  outer.logger->log(LogLevel::info, "executing: " + req.function() + " (dispatch id " + req.dispatch_id() +
                                        ", attempt " + std::to_string(outer.attempt) + ") -> " +
                                        std::string(outcome) + " in " + took);
}

// RunRequest.function (field 1) read off the wire, the input left unread:
// the server asks it for every Run call it places.
const Method* runs(const DispatchTable& table, std::string_view request) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(request.data()),
                                            static_cast<int>(request.size()));
  std::string function;
  bool named = false;
  while (const std::uint32_t tag = in.ReadTag()) {
    if (tag == WireFormatLite::MakeTag(sdk::v1::RunRequest::kFunctionFieldNumber,
                                       WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
      if (!WireFormatLite::ReadString(&in, &function)) return nullptr;
      named = true;  // the last one counts, as the parser has it
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return nullptr;
    }
  }
  if (!named || !in.ConsumedEntireMessage()) return nullptr;
  const Method* method = table.find_function(function);
  return method == &kRunMethod ? nullptr : method;
}

const Method kRunMethod{"Run", "/dispatch.sdk.v1.FunctionService/Run",
                        "dispatch.sdk.v1.RunRequest", "dispatch.sdk.v1.RunResponse", &run,
                        nullptr, nullptr, false, &runs};

// A function that speaks the protocol itself (a workflow) answers the whole
// RunRequest; what it cannot answer (an exception, an error) becomes the
// status of a RunResponse, as for any function.
Result<std::string> run_itself(const MethodCall& call, const Method& method, const sdk::v1::RunRequest& req,
                               std::chrono::steady_clock::time_point started, sdk::v1::RunResponse* response) {
  auto result = call.table.invoke_run(method, call.service, call.request, durable_context(req, call.context));
  log_run(call.context, req, started, result.ok() ? std::string_view("answered") : code_name(result.error().code()));
  if (result.ok()) return result;
  const Error& e = result.error();
  answer_error(response, run_status_for(e.code()), std::string(code_name(e.code())), e.message());
  return response->SerializeAsString();
}

// The Run route of a table: finds its target among the table's functions.
Result<std::string> run(const MethodCall& call) {
  const CallContext& outer = call.context;
  sdk::v1::RunRequest req;
  if (!req.ParseFromArray(call.request.data(), static_cast<int>(call.request.size()))) {
    return Error(Code::invalid_argument,
                 "the request body is not a valid dispatch.sdk.v1.RunRequest message");
  }
  if (req.function().empty()) {
    return Error(Code::invalid_argument, "RunRequest.function is empty; name the function to run");
  }
  const Method* method = call.table.find_function(req.function());
  if (method == nullptr || method == &kRunMethod) {
    return Error(Code::not_found, "function '" + req.function() + "' is not registered at this endpoint" +
                                      " (or its short name is ambiguous: use <package>.<name>)");
  }
  sdk::v1::RunResponse response;
  const auto started = std::chrono::steady_clock::now();
  if (req.directive_case() == sdk::v1::RunRequest::kPollResult && method->run == nullptr) {
    // Only a function that answered Poll can be resumed: a workflow.
    answer_error(&response, RunStatus::invalid_argument, "invalid_argument",
                 "function '" + req.function() +
                     "' is not a workflow: it never answers Poll, so it cannot be resumed with a poll "
                     "result (dispatchctl retry restarts the call from its input)");
  } else if (req.directive_case() == sdk::v1::RunRequest::kPollResult) {
    return run_itself(call, *method, req, started, &response);
  } else if (!req.has_input()) {
    answer_error(&response, RunStatus::invalid_argument, "invalid_argument",
                 "RunRequest for '" + req.function() + "' carries no input");
  } else if (protocol::any_type(req.input()) != method->request_type) {
    answer_error(&response, RunStatus::invalid_argument, "invalid_argument",
                 "function '" + req.function() + "' takes " + method->request_type +
                     ", but the input's type URL is '" + req.input().type_url() + "'");
  } else if (method->run != nullptr) {
    return run_itself(call, *method, req, started, &response);
  } else {
    auto result = call.table.invoke(*method, req.input().value(), durable_context(req, outer));
    log_run(outer, req, started, result.ok() ? std::string_view("ok") : code_name(result.error().code()));
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
