// connect-peer-client: our generated shop stubs calling a server that is not
// ours (server.mjs: connect-node), the other direction of the Connect
// interop. Usage:
//
//   connect-peer-client connect|connect-get|grpc|grpc-gzip URL
//
//   connect      dispatch::HttpClient, Connect unary POSTs over HTTP/1.1
//   connect-get  the same with HttpClientOptions::use_get: get_order (no
//                side effects) goes as a Connect GET; the driver checks the
//                server saw it so
//   grpc         dispatch::GrpcClient, gRPC over HTTP/2 cleartext
//   grpc-gzip    the same with gzip-compressed requests
//
// Every shop function, its results, the errors the shop promises (code,
// message, details), a deadline and async calls. Prints a line per check;
// exit status 0 when all passed, 1 otherwise, 2 on bad arguments.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "dispatch/transport/grpc_client.h"
#include "dispatch/transport/http_client.h"
#include "shop/api.dispatch.h"

namespace {

int failures = 0;
std::string mode;

void expect(bool ok, const std::string& what) {
  std::printf("%s [%s] %s\n", ok ? "ok  " : "FAIL", mode.c_str(), what.c_str());
  if (!ok) ++failures;
}

template <typename T>
std::string outcome(const dispatch::Result<T>& r) {
  return r.ok() ? "success" : r.error().what();
}

// google.protobuf.StringValue's binary encoding: field 1, length-delimited.
std::string string_value(const std::string& s) {
  return std::string(1, '\x0a') + static_cast<char>(s.size()) + s;
}

void run_checks(dispatch::Client& client) {
  namespace remote = shop::remote;
  const int64_t sum = remote::add(client, 40, 2);
  expect(sum == 42, "add(40, 2) = " + std::to_string(sum));
  const int64_t low = std::numeric_limits<int64_t>::min() + 1;
  const int64_t edge = remote::add(client, low, -1);
  expect(edge == std::numeric_limits<int64_t>::min(), "add(INT64_MIN + 1, -1) = " + std::to_string(edge));

  shop::Order order = remote::place_order(client, {{"äpfel ✓", 3, 0.5}, {"pear", 1, 0.75}}, "1001");
  expect(order.id.rfind("o-", 0) == 0 && order.customer == 1001 && order.items.size() == 2 &&
             order.items[0].sku == "äpfel ✓" && order.items[1].price == 0.75 && !order.note &&
             order.status == shop::Status::pending && order.tags == std::vector<int64_t>{3, 1},
         "place_order -> " + order.id + ", customer " + std::to_string(order.customer) + ", " +
             std::to_string(order.items.size()) + " items, first '" +
             (order.items.empty() ? "" : order.items[0].sku) + "'");

  std::vector<shop::Item> many;
  for (int i = 0; i < 80; ++i) many.push_back({"sku-" + std::to_string(i), i + 1, 0.25});
  shop::Order bulk = remote::place_order(client, many, "1002");
  expect(bulk.items.size() == 80 && bulk.items[79].sku == "sku-79" && bulk.note == "bulk order" &&
             bulk.tags.size() == 80 && bulk.tags[79] == 80,
         "place_order with 80 items -> " + std::to_string(bulk.items.size()) + " items, note '" +
             bulk.note.value_or("") + "'");

  remote::charge(client, order);
  shop::Order paid = remote::get_order(client, order.id);
  expect(paid.id == order.id && paid.status == shop::Status::paid,
         "charge_v2(" + order.id + "), then get_order -> status " + std::to_string(static_cast<int>(paid.status)));

  auto again = remote::charge.try_call(client, order);
  expect(!again.ok() && again.error().code() == dispatch::Code::failed_precondition &&
             again.error().message() == "order '" + order.id + "' is not pending",
         "charge_v2 again -> " + outcome(again));

  auto missing = remote::get_order.try_call(client, "o-none");
  const bool detailed = !missing.ok() && missing.error().details().size() == 1 &&
                        missing.error().details()[0].type == "google.protobuf.StringValue" &&
                        missing.error().details()[0].value == string_value("o-none");
  expect(!missing.ok() && missing.error().code() == dispatch::Code::not_found && detailed,
         "get_order(o-none) -> " + outcome(missing) +
             (detailed ? ", with its StringValue detail" : ", detail missing"));

  auto bad = remote::place_order.try_call(client, {{"apple", 1, 0.5}}, "x");
  expect(!bad.ok() && bad.error().code() == dispatch::Code::invalid_argument &&
             bad.error().message() == "customer 'x' is not a customer number",
         "place_order(customer 'x') -> " + outcome(bad));

  const std::string slept = remote::slow(client, 5);
  expect(slept == "slept 5 ms", "slow(5) -> '" + slept + "'");

  dispatch::CallOptions short_timeout;
  short_timeout.timeout = std::chrono::milliseconds(100);
  const auto started = std::chrono::steady_clock::now();
  auto late = remote::slow.try_call(client, 2000, short_timeout);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  expect(!late.ok() && late.error().code() == dispatch::Code::deadline_exceeded && took.count() < 1500,
         "slow(2000) with a 100 ms timeout -> " + outcome(late) + " (took " + std::to_string(took.count()) + " ms)");

  auto pending = remote::slow.async(client, 50);
  auto sum_future = remote::add.async(client, 1, 2);
  const std::string async_slept = pending.get();
  const int64_t three = sum_future.get();
  expect(async_slept == "slept 50 ms" && three == 3,
         "async slow(50) -> '" + async_slept + "', async add(1, 2) = " + std::to_string(three));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: connect-peer-client connect|connect-get|grpc|grpc-gzip URL\n");
    return 2;
  }
  mode = argv[1];
  const std::string url = argv[2];
  std::unique_ptr<dispatch::Client> client;
  if (mode == "connect" || mode == "connect-get") {
    dispatch::HttpClientOptions options;
    options.use_get = mode == "connect-get";
    client = std::make_unique<dispatch::HttpClient>(url, options);
  } else if (mode == "grpc" || mode == "grpc-gzip") {
    dispatch::GrpcClientOptions options;
    options.gzip_requests = mode == "grpc-gzip";
    client = std::make_unique<dispatch::GrpcClient>(url, options);
  } else {
    std::fprintf(stderr, "connect-peer-client: unknown mode '%s'\n", mode.c_str());
    return 2;
  }
  try {
    run_checks(*client);
  } catch (const dispatch::Error& e) {
    expect(false, std::string("unexpected error: ") + e.what());
  }
  return failures == 0 ? 0 : 1;
}
