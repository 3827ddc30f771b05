// FaaS proxies for faas_test.cc, called against a fake gateway: a struct
// function (JSON both ways), a text function, bytes, a function that fails,
// one that answers HTML with a 200, a slow one, and one without a body.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/result.h"

namespace faastest {

struct FibRequest {
  std::int32_t n = 0;
};
struct FibReply {
  std::int64_t value = 0;
};

[[dispatch::faas("fibonacci")]] FibReply fibonacci(const FibRequest& request);
[[dispatch::faas("figlet")]] dispatch::Result<std::string> render(std::string_view text);
[[dispatch::faas("reverse")]] std::vector<std::uint8_t> reverse(const std::vector<std::uint8_t>& data);
[[dispatch::faas("broken")]] FibReply broken(const FibRequest& request);
[[dispatch::faas("html")]] FibReply html(const FibRequest& request);
[[dispatch::faas("slow")]] void slow();

}  // namespace faastest
