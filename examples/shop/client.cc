// shop-client: calls every shop function on a running shop-server through the
// generated stubs (sync, non-throwing, async) and prints what came back.
// Links only the generated client half: no implementations, no server code.
//
//   shop-client [BASE_URL]    (default: $SHOP_URL or http://127.0.0.1:8000)
//
// Signs every request when DISPATCH_SIGNING_KEY is set and sends
// DISPATCH_API_KEY as a bearer token (docs/security.md).
//
// Exit status 0 when every call behaved as the shop promises, 1 otherwise.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "dispatch/transport/http_client.h"
#include "shop/api.dispatch.h"

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

const char* status_name(shop::Status s) {
  switch (s) {
    case shop::Status::pending: return "pending";
    case shop::Status::paid: return "paid";
    case shop::Status::shipped: return "shipped";
  }
  return "?";
}

}  // namespace

int main(int argc, char** argv) {
  std::string url = argc > 1 ? argv[1] : (std::getenv("SHOP_URL") ? std::getenv("SHOP_URL") : "http://127.0.0.1:8000");
  auto options = dispatch::HttpClientOptions::try_from_env();
  if (!options.ok()) {
    std::fprintf(stderr, "shop-client: %s\n", options.error().what());
    return 2;
  }
  auto client_or = dispatch::HttpClient::create(url, std::move(*options));
  if (!client_or.ok()) {
    std::fprintf(stderr, "shop-client: %s\n", client_or.error().what());
    return 2;
  }
  dispatch::HttpClient& client = **client_or;
  namespace remote = shop::remote;
  try {
    const int64_t sum = remote::add(client, 40, 2);
    expect(sum == 42, "add(40, 2) = " + std::to_string(sum));

    shop::Order order = remote::place_order(client, {{"apple", 3, 0.5}, {"pear", 1, 0.75}}, "1001");
    expect(order.customer == 1001 && order.items.size() == 2 && order.status == shop::Status::pending,
           "place_order -> id " + order.id + ", customer " + std::to_string(order.customer) + ", " +
               std::to_string(order.items.size()) + " items, " + status_name(order.status));

    remote::charge(client, order);
    shop::Order paid = remote::get_order(client, order.id);
    expect(paid.status == shop::Status::paid, "charge_v2(" + order.id + "), then get_order -> " +
                                                  status_name(paid.status));

    auto again = remote::charge.try_call(client, order);
    expect(!again.ok() && again.error().code() == dispatch::Code::failed_precondition,
           std::string("charge_v2 again -> ") + (again.ok() ? "ok" : again.error().what()));

    auto missing = remote::get_order.try_call(client, "o-none");
    expect(!missing.ok() && missing.error().code() == dispatch::Code::not_found,
           std::string("get_order(o-none) -> ") + (missing.ok() ? "ok" : missing.error().what()));

    auto bad = remote::place_order.try_call(client, {{"apple", 1, 0.5}}, "not-a-number");
    expect(!bad.ok() && bad.error().code() == dispatch::Code::invalid_argument,
           std::string("place_order(customer 'not-a-number') -> ") + (bad.ok() ? "ok" : bad.error().what()));

    dispatch::CallOptions short_timeout;
    short_timeout.timeout = std::chrono::milliseconds(100);
    auto late = remote::slow.try_call(client, 1000, short_timeout);
    expect(!late.ok() && late.error().code() == dispatch::Code::deadline_exceeded,
           std::string("slow(1000) with a 100 ms timeout -> ") + (late.ok() ? *late : late.error().what()));

    auto pending = remote::slow.async(client, 50);
    auto sum_future = remote::add.async(client, 1, 2);
    const std::string slept = pending.get();
    const int64_t three = sum_future.get();
    expect(slept == "slept 50 ms" && three == 3, "async slow(50) -> '" + slept + "', async add(1, 2) = " +
                                                      std::to_string(three));
  } catch (const dispatch::Error& e) {
    std::printf("FAIL unexpected error: %s\n", e.what());
    ++failures;
  }
  const auto stats = client.stats();
  std::printf("%llu calls over %llu connection(s) to %s\n", static_cast<unsigned long long>(stats.calls),
              static_cast<unsigned long long>(stats.connections_opened), url.c_str());
  return failures == 0 ? 0 : 1;
}
