// The transport benchmark's input to dispatch-gen: the two calls every
// system in bench-transport makes, matching bench/protos/transport.proto
// (AddRequest{a, b} -> result; EchoRequest{data} -> result, bytes).
//
// Not for: anything but the benchmark.
#pragma once

#include <cstdint>
#include <vector>

namespace bench_transport {

[[dispatch::function]] std::int64_t add(std::int64_t a, std::int64_t b);
[[dispatch::function]] std::vector<std::uint8_t> echo(const std::vector<std::uint8_t>& data);

}  // namespace bench_transport
