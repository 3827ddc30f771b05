// The functions the gRPC C++ interop test serves: generated with PACKAGE
// interop.v1 while the C++ lives in namespace grpc_interop, so the gRPC
// client's protoc classes (interop::v1::...) and these structs can share
// one test binary.
//
// Not for: anything but tests/interop/grpc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace grpc_interop {

struct Line {
  std::string sku;
  int32_t qty = 0;
};

struct Basket {
  std::string owner;
  std::vector<Line> lines;
};

[[dispatch::function]] int64_t add(int64_t a, int64_t b);
// The basket back with its lines' quantities summed into `total`.
[[dispatch::function]] Basket total(const Basket& basket);
// Fails with `code` (a canonical code number), message `message` and one
// error detail (google.rpc.RetryInfo-like bytes).
[[dispatch::function]] void fail(int32_t code, std::string message);
// Sleeps `ms` milliseconds.
[[dispatch::function]] std::string nap(int32_t ms);
// The trace id of the call it serves (dispatch::this_call().trace).
[[dispatch::function]] std::string trace_id();
// The values of request metadata `name` joined with ","; the answer's
// metadata carries them as "x-seen", and the bytes of binary metadata
// "x-blob-bin" reversed as "x-blob-bin". Fails with `fail_code` (0: not)
// after adding them.
[[dispatch::function]] std::string metadata(std::string name, int32_t fail_code);

}  // namespace grpc_interop
