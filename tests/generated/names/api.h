// Functions whose parameters are named like what the generated code names
// itself: the stubs' members (path, function, request_type, ...,
// decode_reply), async()'s and co()'s template parameter (Deferred), their own
// parameters and locals (client, options, request, c, p, e, ...) and the
// codecs' (v, value, bytes, response); and functions named like the server
// half's own names or another stub's type. The generated code must compile
// warning-free under -Wshadow and call the right function with the right
// arguments (names_test.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace names {

// `path` is also the stub's URL path: a call must go to the function's path,
// not to the argument.
[[dispatch::function]] std::string read_file(const std::string& path);

[[dispatch::function]] std::string collide(std::string function, std::string request_type,
                                           std::string response_type, std::int32_t c, std::int32_t p,
                                           std::int32_t e, std::int32_t client, std::int32_t options,
                                           std::int32_t request, std::int32_t async, std::int32_t co,
                                           std::int32_t dispatch, std::int32_t encode_request,
                                           std::int32_t try_call, std::int32_t v, std::int32_t value,
                                           std::int32_t bytes, std::int32_t response, std::int32_t promise,
                                           std::int32_t future, std::int32_t reply, std::int32_t done,
                                           std::int32_t result, std::int32_t decode_reply,
                                           std::int32_t Deferred);

// Named like the server half's table (kMethods), read_file's handler
// (read_file_handler) and read_file's stub type (read_file_stub). The
// generated code once referred to an ambiguous kMethods and did not compile.
[[dispatch::function]] std::int32_t kMethods(std::int32_t x);
[[dispatch::function]] std::int32_t read_file_handler(std::int32_t x);
[[dispatch::function]] std::int32_t read_file_stub(std::int32_t x);

// Default arguments carry over to the stubs, evaluated in this namespace as
// in the declaration: `path()` below is this function, not the stubs'
// static member `path`; kDefaultScale and Unit resolve here too.
constexpr std::int32_t kDefaultScale = 3;
enum class Unit { mm, cm };
struct Box {
  std::int32_t w;
  std::string label;
};
inline std::string path() { return "here"; }
[[dispatch::function]] std::string measure(std::int32_t n, std::string label = "box", Box box = {4, "b"},
                                           std::vector<std::int32_t> extra = {1, 2}, std::string where = path(),
                                           std::int32_t scale = kDefaultScale * 2, Unit unit = Unit::cm);

// Helpers named by parameter name would both be dispatch_default_get_user_id.
[[dispatch::function]] std::int32_t get(std::int32_t user_id = 7);
[[dispatch::function]] std::int32_t get_user(std::int32_t id = 8);

}  // namespace names
