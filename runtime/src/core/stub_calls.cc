// The out-of-line half of dispatch/core/stub_calls.h: what every generated
// stub's call forms do whatever their result type. Not for: decoding (the
// generated DecodeReply functions do it).
#include "dispatch/core/stub_calls.h"

namespace dispatch::stub {

Error malformed_reply(std::string_view path, const Error& why) {
  return Error(Code::internal, "malformed reply from " + std::string(path) + ": " + why.message());
}

CallOptions without_side_effects(const CallOptions& options) {
  CallOptions copy = options;
  copy.no_side_effects = true;
  return copy;
}

Result<std::string> call(Client& client, std::string_view path, Result<std::string> request,
                         const CallOptions& options) {
  if (!request.ok()) return std::move(request).error();
  return client.call(path, std::move(*request), options);
}

void start(Client& client, std::string_view path, Result<std::string> request, const CallOptions& options,
           std::unique_ptr<ReplySink> sink) {
  if (!request.ok()) {
    sink->deliver(std::move(request).error());
    return;
  }
  // Client::Callback must be copyable; the sink is delivered to once.
  std::shared_ptr<ReplySink> shared(std::move(sink));
  client.call_async(path, std::move(*request), options,
                    [shared](Result<std::string> reply) { shared->deliver(std::move(reply)); });
}

std::function<void(Client::Callback)> deferred_start(Client& client, std::string_view path,
                                                     Result<std::string> request, const CallOptions& options) {
  // std::function needs a copyable callable; copies share the request, which
  // the one call moves out.
  auto held = std::make_shared<Result<std::string>>(std::move(request));
  return [&client, path, held, options](Client::Callback done) {
    Result<std::string> request = std::move(*held);
    if (!request.ok()) {
      done(std::move(request).error());
      return;
    }
    client.call_async(path, std::move(*request), options, std::move(done));
  };
}

}  // namespace dispatch::stub
