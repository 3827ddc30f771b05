// Stateful functions: functions taking a dispatch::Context<State>& first,
// each field of the state struct a persisted value (built-in StateFun types,
// a message, optional ones, expirations; other types through their state
// wrapper messages), a message of one type, of several
// (a std::variant) or a built-in; a function type named in the annotation;
// beside a plain function.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "dispatch/stateful/context.h"

namespace greeter {

struct GreetRequest {
  std::string name;
};
struct Reset {
  bool hard = false;
};
enum class Mood { calm = 0, busy = 1 };
struct Place {
  std::string street;
};
struct Profile {  // mapped before the Place it holds: the structs are reordered
  std::string city;
  std::int32_t visits = 0;
  Place home;
};

struct Seen {
  std::int32_t count = 0;
  [[dispatch::expire_after_write("10m")]] std::optional<std::string> last_name;
  [[dispatch::expire_after_invoke("1d")]] std::optional<Profile> profile;
  std::int64_t total = 0;
  bool vip = false;
  double score = 0;
  float ratio = 0;
  std::string note;
  Mood mood = Mood::busy;       // these through wrappers: greeter.Seen_mood { Mood value = 1; }
  std::uint32_t visits = 0;
  std::int16_t level = -1;
  std::vector<std::string> tags;
  std::map<std::string, std::int64_t> points;
  [[dispatch::expire_after_write("1h")]] std::optional<std::vector<Profile>> history;
};

struct Tally {
  std::int64_t sum = 0;
};

[[dispatch::function]] void greet(dispatch::Context<Seen>& ctx, const GreetRequest& req);
[[dispatch::function]] void handle(dispatch::Context<Seen>& ctx, std::variant<GreetRequest, Reset> message);
[[dispatch::function("counters/tally")]] void add(dispatch::Context<Tally>& ctx, std::int64_t amount);
[[dispatch::function]] std::string hello(const std::string& name);

}  // namespace greeter
