// The interop test's functions (interop_api.h).
#include <chrono>
#include <thread>

#include "dispatch/core/error.h"
#include "dispatch/core/service.h"
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

}  // namespace grpc_interop
