// dispatch-soak: the load side of scripts/soak.sh. N threads, each with its
// own dispatch::HttpClient (so N keep-alive connections), call the shop
// example server back to back for T seconds through the generated stubs, and
// check every answer: add() must sum, get_order() of an unknown id must be
// not_found, a call to a path nobody serves must be unimplemented (error
// paths leak differently from good ones). Every 200th call a thread drops its
// client and opens a new one, so connection setup and teardown are soaked
// too. Prints one line per second and a summary; exits 1 on any wrong
// answer.
//
// Not for: throughput figures (bench/ measures those) or starting the server.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/transport/http_client.h"
#include "shop/api.dispatch.h"

namespace {

struct Counters {
  std::atomic<std::uint64_t> calls{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> reconnects{0};
  std::mutex mu;
  std::string first_error;  // guarded by mu

  void error(const std::string& what) {
    if (errors++ == 0) {
      std::lock_guard lock(mu);
      first_error = what;
    }
  }
};

void run(const std::string& url, int index, std::chrono::steady_clock::time_point end, Counters& c) {
  auto client = std::make_unique<dispatch::HttpClient>(url);
  std::uint64_t n = 0;
  while (std::chrono::steady_clock::now() < end) {
    const auto a = static_cast<std::int64_t>(index) * 1'000'003 + static_cast<std::int64_t>(n);
    switch (n % 10) {
      case 7: {
        auto r = shop::remote::get_order.try_call(*client, "no-such-order-" + std::to_string(n));
        if (r.ok() || r.error().code() != dispatch::Code::not_found) {
          c.error("get_order(unknown) gave " + std::string(r.ok() ? "ok" : r.error().what()));
        }
        break;
      }
      case 9: {
        auto r = client->call("/shop.ApiService/no_such_function", std::string(), dispatch::CallOptions{});
        if (r.ok() || r.error().code() != dispatch::Code::unimplemented) {
          c.error("unknown path gave " + std::string(r.ok() ? "ok" : r.error().what()));
        }
        break;
      }
      default: {
        auto r = shop::remote::add.try_call(*client, a, -7);
        if (!r.ok()) {
          c.error(std::string("add failed: ") + r.error().what());
        } else if (*r != a - 7) {
          c.error("add(" + std::to_string(a) + ", -7) = " + std::to_string(*r));
        }
      }
    }
    ++c.calls;
    if (++n % 200 == 0) {
      client = std::make_unique<dispatch::HttpClient>(url);
      ++c.reconnects;
    }
  }
}

int usage() {
  std::fprintf(stderr, "usage: dispatch-soak URL CONNECTIONS SECONDS\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return usage();
  const std::string url = argv[1];
  const int connections = std::atoi(argv[2]);
  const int seconds = std::atoi(argv[3]);
  if (connections <= 0 || connections > 1000 || seconds <= 0) return usage();

  Counters c;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(seconds);
  std::vector<std::thread> threads;
  for (int i = 0; i < connections; ++i) threads.emplace_back(run, url, i, end, std::ref(c));
  std::uint64_t last = 0;
  for (int s = 1; s <= seconds; ++s) {
    std::this_thread::sleep_until(start + std::chrono::seconds(s));
    const std::uint64_t now = c.calls.load();
    std::printf("soak-client t=%ds calls/s=%llu errors=%llu\n", s, static_cast<unsigned long long>(now - last),
                static_cast<unsigned long long>(c.errors.load()));
    std::fflush(stdout);
    last = now;
  }
  for (auto& t : threads) t.join();
  std::printf("soak-client total calls=%llu errors=%llu reconnects=%llu\n",
              static_cast<unsigned long long>(c.calls.load()), static_cast<unsigned long long>(c.errors.load()),
              static_cast<unsigned long long>(c.reconnects.load()));
  if (c.errors != 0) {
    std::printf("soak-client first error: %s\n", c.first_error.c_str());
    return 1;
  }
  return 0;
}
