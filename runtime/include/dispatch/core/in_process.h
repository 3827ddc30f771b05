// dispatch::InProcessClient: a Client that runs calls straight into a
// DispatchTable in the same process, through the real encoders and decoders
// but without a network. For tests, users' own unit tests included. The
// function sees CallOptions::headers as its request headers; headers it adds
// to its answer are checked as over a network and given to the caller in
// CallOptions::response_headers.
//
// Public header: compiles as C++17 and C++20.
#pragma once

#include "dispatch/core/client.h"
#include "dispatch/core/service.h"

namespace dispatch {

class InProcessClient final : public Client {
 public:
  // `table` must outlive the client.
  explicit InProcessClient(const DispatchTable& table) : table_(table) {}

  // Runs the call on the calling thread; `done` is called before return.
  void call_async(std::string_view path, std::string request, const CallOptions& options,
                  Callback done) override;
  Result<std::string> call(std::string_view path, std::string request,
                           const CallOptions& options) override;

 private:
  const DispatchTable& table_;
};

}  // namespace dispatch
