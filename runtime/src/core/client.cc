// The blocking default of Client::call(), and the in-process transport.
#include <future>

#include "dispatch/core/client.h"
#include "dispatch/core/in_process.h"

namespace dispatch {

Result<std::string> Client::call(std::string_view path, std::string request,
                                 const CallOptions& options) {
  std::promise<Result<std::string>> promise;
  auto future = promise.get_future();
  call_async(path, std::move(request), options,
             [&promise](Result<std::string> r) { promise.set_value(std::move(r)); });
  return future.get();
}

Result<std::string> InProcessClient::call(std::string_view path, std::string request,
                                          const CallOptions& options) {
  const Method* method = table_.find(path);
  if (method == nullptr) {
    return Error(Code::unimplemented, "no function is served at " + std::string(path));
  }
  CallContext context;
  if (options.timeout) context.deadline = std::chrono::steady_clock::now() + *options.timeout;
  // The function sees CallOptions::headers as a server would show them, and
  // adds headers to its answer as it would over a network (checked the same
  // way), which CallOptions::response_headers receives.
  const RequestHeaderList headers(options.headers);
  ResponseHeaders answer_headers;
  if (!options.headers.empty()) context.request_headers = &headers;
  context.response_headers = &answer_headers;
  auto result = table_.invoke(*method, request, context);
  if (options.response_headers != nullptr) *options.response_headers = answer_headers.lines();
  if (result.ok() && context.expired()) {
    return Error(Code::deadline_exceeded,
                 std::string(path) + " ran past its " + std::to_string(options.timeout->count()) +
                     " ms deadline");
  }
  return result;
}

void InProcessClient::call_async(std::string_view path, std::string request,
                                 const CallOptions& options, Callback done) {
  done(call(path, std::move(request), options));
}

}  // namespace dispatch
