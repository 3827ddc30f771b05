// The serde benchmark's input to dispatch-gen: issue 2's Order, Item and
// Status, field for field as in bench/protos/serde.proto. One annotated
// function makes the generator emit codecs for Order; the benchmark only
// calls those codecs (bench_serde::serde_api_wire::encode/decode).
//
// Not for: anything but the benchmark.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bench_serde {

enum class Status { pending, paid, shipped };

struct Item {
  std::string sku;
  std::int32_t qty;
  double price;
};

struct Order {
  std::string id;
  std::int64_t customer;
  std::vector<Item> items;
  std::optional<std::string> note;
  Status status;
  std::vector<std::int64_t> tags;
};

[[dispatch::function]] void store(const Order& order);

}  // namespace bench_serde
