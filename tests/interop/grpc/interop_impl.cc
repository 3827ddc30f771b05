// The interop test's functions (interop_api.h).
#include <chrono>
#include <thread>

#include "dispatch/core/error.h"
#include "dispatch/core/service.h"
#include "dispatch/transport/binary_header.h"
#include "interop_api.h"

namespace grpc_interop {

int64_t add(int64_t a, int64_t b) { return a + b; }

Basket total(const Basket& basket) {
  Basket out = basket;
  int32_t sum = 0;
  for (const Line& l : basket.lines) sum += l.qty;
  out.lines.push_back(Line{"total", sum});
  return out;
}

void fail(int32_t code, std::string message) {
  throw dispatch::Error(static_cast<dispatch::Code>(code), std::move(message),
                        {{"google.rpc.RetryInfo", std::string("\x0a\x02\x08\x05", 4)}});
}

std::string nap(int32_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return "slept";
}

std::string trace_id() { return dispatch::this_call().trace.trace_id_hex(); }

std::string metadata(std::string name, int32_t fail_code) {
  std::string seen;
  if (const dispatch::RequestHeaders* headers = dispatch::this_call().request_headers) {
    for (const std::string& v : headers->values(name)) seen += (seen.empty() ? "" : ",") + v;
  }
  dispatch::add_response_header("x-seen", seen).value();
  if (auto blob = dispatch::request_header("x-blob-bin")) {
    std::string bytes = dispatch::decode_binary_header(*blob).value();
    dispatch::add_response_header("x-blob-bin", dispatch::encode_binary_header(std::string(bytes.rbegin(), bytes.rend()))).value();
  }
  if (fail_code != 0) throw dispatch::Error(static_cast<dispatch::Code>(fail_code), "failed as asked");
  return seen;
}

}  // namespace grpc_interop
