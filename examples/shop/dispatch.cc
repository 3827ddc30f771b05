// shop-dispatch: hands shop calls to a durable scheduler (dispatchd) through
// the generated stubs' dispatch() form, then awaits each call's result as
// its C++ type and checks it. The README demo (scripts/demo.sh) kills the
// server with SIGKILL while these calls are pending and starts it again.
//
//   shop-dispatch [--calls N] [--slow-ms MS] [--delay-ms MS] [--timeout-ms MS]
//
// Makes N calls (default 12), alternately shop.slow(MS + i) (runs MS ms or
// so: still running when the demo kills the server) and shop.add(i, i * i)
// dispatched with a delay of --delay-ms (due while the server is down).
// The scheduler is $DISPATCH_API_URL with $DISPATCH_API_KEY; the calls go
// to $DISPATCH_ENDPOINT_URL (docs/scheduler.md, "The client side from the
// environment").
//
// Prints one line per call once the scheduler has persisted it, then
// "awaiting N calls", then each result as it is awaited. Exit status 0 when
// every call ended with its right result, 1 otherwise, 2 on bad usage.
//
// Not for: calling the shop directly (shop-client does that).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dispatch/durable/dispatch_client.h"
#include "dispatch/durable/dispatched.h"
#include "shop/api.dispatch.h"

namespace {

std::optional<int> number(const char* flag, const char* value) {
  char* end = nullptr;
  const long v = std::strtol(value, &end, 10);
  if (*value == '\0' || *end != '\0' || v < 0 || v > 3'600'000) {
    std::fprintf(stderr, "shop-dispatch: %s needs a number of 0..3600000, got '%s'\n", flag, value);
    return std::nullopt;
  }
  return static_cast<int>(v);
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 12, slow_ms = 600, delay_ms = 400, timeout_ms = 30'000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    int* target = a == "--calls"        ? &calls
                  : a == "--slow-ms"    ? &slow_ms
                  : a == "--delay-ms"   ? &delay_ms
                  : a == "--timeout-ms" ? &timeout_ms
                                        : nullptr;
    if (target == nullptr || i + 1 >= argc) {
      std::fprintf(stderr, "usage: shop-dispatch [--calls N] [--slow-ms MS] [--delay-ms MS] [--timeout-ms MS]\n");
      return 2;
    }
    auto v = number(argv[i], argv[i + 1]);
    if (!v) return 2;
    *target = *v;
    ++i;
  }
  if (calls < 1 || calls > 1000) {
    std::fprintf(stderr, "shop-dispatch: --calls needs 1..1000, got %d\n", calls);
    return 2;
  }
  auto scheduler_or = dispatch::DispatchClient::from_env();
  if (!scheduler_or.ok()) {
    std::fprintf(stderr, "shop-dispatch: %s\n", scheduler_or.error().what());
    return 2;
  }
  // The calls' handles refer to it: it outlives them, and stays where it is.
  dispatch::DispatchClient& scheduler = *scheduler_or;
  namespace remote = shop::remote;

  // What each call is, what it must give, and its handle (the stub's
  // dispatch() gives it once the scheduler has persisted the call).
  struct Slow {
    std::string call, expected;
    dispatch::Dispatched<std::string> handle;
  };
  struct Add {
    std::string call;
    int64_t expected;
    dispatch::Dispatched<int64_t> handle;
  };
  std::vector<Slow> slow_calls;
  std::vector<Add> add_calls;
  for (int i = 0; i < calls; ++i) {
    if (i % 2 == 0) {
      const int32_t ms = slow_ms + i;
      auto dispatched = remote::slow.dispatch(scheduler, ms);
      if (!dispatched.ok()) {
        std::fprintf(stderr, "shop-dispatch: slow(%d): %s\n", ms, dispatched.error().what());
        return 1;
      }
      slow_calls.push_back({"slow(" + std::to_string(ms) + ")", "slept " + std::to_string(ms) + " ms",
                            std::move(*dispatched)});
      std::printf("dispatched %s  %s\n", slow_calls.back().handle.id().c_str(), slow_calls.back().call.c_str());
    } else {
      const int64_t a = i, b = static_cast<int64_t>(i) * i;
      dispatch::DispatchOptions later;
      later.delay = std::chrono::milliseconds(delay_ms);
      auto dispatched = remote::add.dispatch(scheduler, a, b, later);
      if (!dispatched.ok()) {
        std::fprintf(stderr, "shop-dispatch: add(%lld, %lld): %s\n", static_cast<long long>(a),
                     static_cast<long long>(b), dispatched.error().what());
        return 1;
      }
      add_calls.push_back({"add(" + std::to_string(a) + ", " + std::to_string(b) + ")", a + b,
                           std::move(*dispatched)});
      std::printf("dispatched %s  %s, due in %d ms\n", add_calls.back().handle.id().c_str(),
                  add_calls.back().call.c_str(), delay_ms);
    }
  }
  std::printf("awaiting %d calls\n", calls);
  std::fflush(stdout);

  int right = 0;
  const auto timeout = std::chrono::milliseconds(timeout_ms);
  for (const Slow& c : slow_calls) {
    auto r = c.handle.wait(timeout);
    const bool ok = r.ok() && *r == c.expected;
    right += ok;
    std::printf("%s %s  %s -> %s\n", ok ? "ok  " : "FAIL", c.handle.id().c_str(), c.call.c_str(),
                r.ok() ? ("\"" + *r + "\"").c_str() : r.error().what());
  }
  for (const Add& c : add_calls) {
    auto r = c.handle.wait(timeout);
    const bool ok = r.ok() && *r == c.expected;
    right += ok;
    std::printf("%s %s  %s -> %s\n", ok ? "ok  " : "FAIL", c.handle.id().c_str(), c.call.c_str(),
                r.ok() ? std::to_string(*r).c_str() : r.error().what());
  }
  std::printf("%d of %d calls gave their right result\n", right, calls);
  return right == calls ? 0 : 1;
}
