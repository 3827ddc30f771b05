// The names functions the generated server half calls in tests: each returns
// its arguments, in order, so a test sees that every one arrived where it
// was sent.
#include "names/api.h"

namespace names {

std::string read_file(const std::string& path) { return "contents of " + path; }

std::string collide(std::string function, std::string request_type, std::string response_type, std::int32_t c,
                    std::int32_t p, std::int32_t e, std::int32_t client, std::int32_t options,
                    std::int32_t request, std::int32_t async, std::int32_t co, std::int32_t dispatch,
                    std::int32_t encode_request, std::int32_t try_call, std::int32_t v, std::int32_t value,
                    std::int32_t bytes, std::int32_t response, std::int32_t promise, std::int32_t future,
                    std::int32_t reply, std::int32_t done, std::int32_t result, std::int32_t decode_reply,
                    std::int32_t Deferred) {
  std::string s = function + "," + request_type + "," + response_type;
  for (std::int32_t n : {c, p, e, client, options, request, async, co, dispatch, encode_request, try_call, v,
                         value, bytes, response, promise, future, reply, done, result, decode_reply, Deferred}) {
    s += "," + std::to_string(n);
  }
  return s;
}

std::int32_t kMethods(std::int32_t x) { return x + 1; }
std::int32_t read_file_handler(std::int32_t x) { return x + 2; }
std::int32_t read_file_stub(std::int32_t x) { return x + 3; }

std::string measure(std::int32_t n, std::string label, Box box, std::vector<std::int32_t> extra, std::string where,
                    std::int32_t scale, Unit unit) {
  std::string s = std::to_string(n) + "," + label + "," + std::to_string(box.w) + ":" + box.label + ",";
  for (std::int32_t e : extra) s += std::to_string(e) + "|";
  return s + "," + where + "," + std::to_string(scale) + "," + (unit == Unit::cm ? "cm" : "mm");
}

std::int32_t get(std::int32_t user_id) { return user_id; }
std::int32_t get_user(std::int32_t id) { return id; }

}  // namespace names
