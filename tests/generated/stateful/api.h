// Stateful functions for the generated-code tests: a greeter whose state
// has defaults, an optional field that expires, and a counter it messages
// (its function type named in the annotation); one function takes two
// message types; an inventory replies with a struct.
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
  bool remind = false;           // send itself a reminder in an hour
  bool cancel_reminder = false;  // cancel it
};
struct Reset {
  bool hard = false;  // forget the count and the name; else restore the budget
};

struct Seen {
  std::int32_t count = 0;
  [[dispatch::expire_after_write("10m")]] std::optional<std::string> last_name;
  std::int32_t budget = 5;  // a default other than zero
};

struct Tally {
  std::int64_t sum = 0;
};

// An inventory: typed replies and egress records of a struct of this header;
// state of types StateFun has no name for.
enum class Grade { unknown = 0, fresh = 1, bruised = 2 };
struct Restock {
  std::string item;
  std::int64_t amount = 0;
  bool bad_reply = false;  // also try an egress record of a struct no .proto has
  Grade grade = Grade::fresh;
};
struct Shelf {
  std::string aisle;
};
struct Receipt {  // mapped before the Shelf it holds
  std::string item;
  std::int64_t stock = 0;
  Shelf shelf;
};
struct Inventory {
  std::int64_t total = 0;
  std::optional<Receipt> last;  // a message; also what restock replies with
  // Each through its wrapper message, greeter.Inventory_<field>.
  Grade grade = Grade::unknown;
  std::uint32_t restocks = 0;
  std::int16_t low = -1;                    // a default other than zero
  std::uint64_t big = 0;
  std::vector<std::string> items;           // in arrival order, once each
  std::map<std::string, std::int64_t> stock;
  std::optional<std::vector<Shelf>> shelves;  // absent until an item has a shelf
};

// Counts greetings per entity, tells the counter, replies to a caller,
// writes the name to the egress greeter/log.
[[dispatch::function]] void greet(dispatch::Context<Seen>& ctx, const GreetRequest& req);
// The same state under another type: a greeting renames, a Reset clears.
[[dispatch::function]] void admin(dispatch::Context<Seen>& ctx, std::variant<GreetRequest, Reset> message);
// Sums what it is sent; each new sum goes to the egress counters/sums.
[[dispatch::function("counters/tally")]] void tally(dispatch::Context<Tally>& ctx, std::int64_t amount);
// Adds to the stock; replies with a Receipt, which also goes to the egress
// inventory/receipts.
[[dispatch::function]] void restock(dispatch::Context<Inventory>& ctx, const Restock& r);

}  // namespace greeter
