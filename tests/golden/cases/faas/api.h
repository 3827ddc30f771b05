// FaaS proxies: declarations naming functions on an OpenFaaS gateway, whose
// bodies are text (std::string, std::string_view), bytes, a struct (JSON)
// or nothing, and whose results are text, bytes, a struct or void, spelled
// plainly or as dispatch::Result<T>; in two namespaces (one package given),
// beside a function we serve, which alone is in the .proto's service.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/result.h"

namespace figlet {

[[dispatch::faas("figlet")]] dispatch::Result<std::string> render(const std::string& text);
[[dispatch::faas("figlet.openfaas-fn")]] std::string render_view(std::string_view text);

}  // namespace figlet

namespace math {

struct FibRequest {
  std::int32_t n = 0;
};
struct FibReply {
  std::int64_t value = 0;
};

[[dispatch::faas("fibonacci.openfaas-fn")]] FibReply fibonacci(const FibRequest& r);
[[dispatch::faas("sha256")]] std::vector<std::byte> digest(const std::vector<std::byte>& data);
[[dispatch::faas("nodeinfo")]] dispatch::Result<void> ping();

// Ours: served, and the only rpc of the .proto.
[[dispatch::function]] FibReply fib_local(FibRequest request);

}  // namespace math
