// bench-json-codec: connect::JsonCodec's JSON <-> wire conversions for
// messages shaped like bench-events' Tick (the request's data) and Tally
// (the reply's data), beside protobuf's JsonToBinaryString and
// BinaryToJsonString over the same pool (the codec's path before its fast
// path, and still its fallback).
//
// Not for: the HTTP side (bench-events measures whole calls).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "transport/json_fast_test_support.h"

namespace {

using dispatch::connect::testing::JsonFastRig;

const JsonFastRig& rig() {
  static const auto* const instance = new JsonFastRig();
  return *instance;
}

const std::string kTick = R"({"n":41,"note":"a tick of the events benchmark"})";
const std::string kTally("\x08\x2a", 2);

void BM_CodecTickToBinary(benchmark::State& state) {
  for (auto _ : state) {
    auto r = rig().codec().to_binary("jf.Tick", kTick);
    if (!r.ok()) std::abort();
    benchmark::DoNotOptimize(r);
  }
}
void BM_ProtobufTickToBinary(benchmark::State& state) {
  for (auto _ : state) {
    auto r = rig().protobuf_to_binary("jf.Tick", kTick);
    if (!r) std::abort();
    benchmark::DoNotOptimize(r);
  }
}
void BM_CodecTallyToJson(benchmark::State& state) {
  for (auto _ : state) {
    auto r = rig().codec().to_json("jf.Tally", kTally, /*print_defaults=*/true);
    if (!r.ok()) std::abort();
    benchmark::DoNotOptimize(r);
  }
}
void BM_ProtobufTallyToJson(benchmark::State& state) {
  for (auto _ : state) {
    auto r = rig().protobuf_to_json("jf.Tally", kTally, /*defaults=*/true);
    if (!r) std::abort();
    benchmark::DoNotOptimize(r);
  }
}

BENCHMARK(BM_CodecTickToBinary);
BENCHMARK(BM_ProtobufTickToBinary);
BENCHMARK(BM_CodecTallyToJson);
BENCHMARK(BM_ProtobufTallyToJson);

}  // namespace

BENCHMARK_MAIN();
