// The serde benchmark (issue 2): encode and decode of one Order with 10 items,
// 8 tags and a note, protoc-generated C++ (protobuf 3.21) against the codecs
// dispatch-gen generates, in one Google Benchmark run on the same bytes.
//
// Rows: <system>/encode        into a fresh std::string
//       <system>/decode        into a fresh object per call (the fair row:
//                              ours always decodes into a fresh C++ struct)
//       protoc/decode_reused   ParseFromString into one reused message,
//                              which keeps its allocated strings and items
// Not for: correctness of either codec beyond the equal-bytes check in
// main() (tests/ and runtime/ have those).
#include <benchmark/benchmark.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "serde.pb.h"

#ifdef BENCH_HAVE_OURS
#include "serde_api.dispatch.h"
#endif

namespace {

// The Order: 10 items, 8 tags spanning 1- to 9-byte varints, a note.
protocbench::Order make_protoc_order() {
  protocbench::Order order;
  order.set_id("ord-2026-11-000123");
  order.set_customer(1234567890123);
  for (int i = 0; i < 10; ++i) {
    auto* item = order.add_items();
    item->set_sku("SKU-" + std::to_string(10000 + i * 37) + "-BLU");
    item->set_qty(i + 1);
    item->set_price(9.99 + 2.5 * i);
  }
  order.set_note("Leave at the back door; ring twice. Gift wrap items 3 and 7.");
  order.set_status(protocbench::STATUS_PAID);
  for (long long tag : {1LL, 127LL, 128LL, 16384LL, 2000000LL, 1LL << 35, 1LL << 56, -5LL}) order.add_tags(tag);
  return order;
}

const protocbench::Order& protoc_order() {
  static const protocbench::Order order = make_protoc_order();
  return order;
}

const std::string& wire_bytes() {
  static const std::string bytes = protoc_order().SerializeAsString();
  return bytes;
}

void protoc_encode(benchmark::State& state) {
  const auto& order = protoc_order();
  for (auto _ : state) {
    std::string out = order.SerializeAsString();
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(protoc_encode)->Name("protoc/encode");

void protoc_decode(benchmark::State& state) {
  const auto& bytes = wire_bytes();
  for (auto _ : state) {
    protocbench::Order order;
    if (!order.ParseFromString(bytes)) state.SkipWithError("protoc failed to parse its own bytes");
    benchmark::DoNotOptimize(order);
  }
}
BENCHMARK(protoc_decode)->Name("protoc/decode");

void protoc_decode_reused(benchmark::State& state) {
  const auto& bytes = wire_bytes();
  protocbench::Order order;
  for (auto _ : state) {
    if (!order.ParseFromString(bytes)) state.SkipWithError("protoc failed to parse its own bytes");
    benchmark::DoNotOptimize(order);
  }
}
BENCHMARK(protoc_decode_reused)->Name("protoc/decode_reused");

#ifdef BENCH_HAVE_OURS
namespace wire = bench_serde::serde_api_wire;

// The same Order as make_protoc_order(), as the C++ struct ours encodes.
bench_serde::Order make_order() {
  bench_serde::Order order;
  order.id = "ord-2026-11-000123";
  order.customer = 1234567890123;
  for (int i = 0; i < 10; ++i) {
    order.items.push_back({"SKU-" + std::to_string(10000 + i * 37) + "-BLU", i + 1, 9.99 + 2.5 * i});
  }
  order.note = "Leave at the back door; ring twice. Gift wrap items 3 and 7.";
  order.status = bench_serde::Status::paid;
  order.tags = {1LL, 127LL, 128LL, 16384LL, 2000000LL, 1LL << 35, 1LL << 56, -5LL};
  return order;
}

void ours_encode(benchmark::State& state) {
  const auto order = make_order();
  for (auto _ : state) {
    std::string out = wire::encode(order);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(ours_encode)->Name("ours/encode");

void ours_decode(benchmark::State& state) {
  const auto& bytes = wire_bytes();
  for (auto _ : state) {
    bench_serde::Order order;
    if (!wire::decode(bytes, &order).ok()) state.SkipWithError("ours failed to decode protoc's bytes");
    benchmark::DoNotOptimize(order);
  }
}
BENCHMARK(ours_decode)->Name("ours/decode");

// Both sides must mean the same Order, or the comparison is void: protoc
// parses our bytes and must find its own message, and our decoder must read
// protoc's bytes back into the Order we encoded.
bool same_order_both_ways() {
  const std::string our_bytes = wire::encode(make_order());
  protocbench::Order parsed;
  if (!parsed.ParseFromString(our_bytes)) {
    std::fprintf(stderr, "serde: protoc cannot parse the bytes our encoder produced\n");
    return false;
  }
  std::string diff;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&diff);
  if (!differ.Compare(protoc_order(), parsed)) {
    std::fprintf(stderr, "serde: our encoding differs from protoc's Order:\n%s", diff.c_str());
    return false;
  }
  bench_serde::Order decoded;
  if (auto r = wire::decode(wire_bytes(), &decoded); !r.ok()) {
    std::fprintf(stderr, "serde: our decoder rejects protoc's bytes: %s\n", r.error().message().c_str());
    return false;
  }
  if (wire::encode(decoded) != our_bytes) {
    std::fprintf(stderr, "serde: our decoder reads protoc's bytes into a different Order\n");
    return false;
  }
  if (our_bytes != wire_bytes()) {
    std::fprintf(stderr, "serde: note: encodings are equal in meaning but not byte for byte (%zu vs %zu bytes)\n",
                 our_bytes.size(), wire_bytes().size());
  }
  return true;
}
#endif

}  // namespace

int main(int argc, char** argv) {
#ifdef BENCH_HAVE_OURS
  if (!same_order_both_ways()) return 1;
#endif
  std::fprintf(stderr, "serde: the Order is %zu bytes on the wire\n", wire_bytes().size());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
