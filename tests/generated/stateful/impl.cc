// The stateful functions of stateful/api.h: what each does with its
// Context is what stateful_test.cc checks on the wire.
#include <chrono>
#include <stdexcept>
#include <type_traits>

#include "stateful/api.dispatch.h"

namespace greeter {

void greet(dispatch::Context<Seen>& ctx, const GreetRequest& req) {
  Seen& seen = ctx.state();
  ++seen.count;
  --seen.budget;
  seen.last_name = req.name;
  ctx.send(remote::tally, ctx.id(), std::int64_t{1});
  if (req.remind) {
    ctx.send_after(std::chrono::hours(1), remote::greet, ctx.id(), GreetRequest{req.name, false, false},
                   "remind-" + ctx.id());
  }
  if (req.cancel_reminder) ctx.cancel_delayed("remind-" + ctx.id());
  if (ctx.caller()) ctx.reply("hello " + req.name + " #" + std::to_string(seen.count)).value();
  ctx.egress("greeter/log", req.name).value();
}

void admin(dispatch::Context<Seen>& ctx, std::variant<GreetRequest, Reset> message) {
  if (auto* greeting = std::get_if<GreetRequest>(&message)) {
    ctx.state().last_name = greeting->name;
    return;
  }
  if (ctx.clear("no_such_field").ok()) throw std::logic_error("clear() took a field the state does not have");
  if (std::get<Reset>(message).hard) {
    ctx.clear("count").value();
    ctx.state().last_name.reset();
  } else {
    ctx.clear("budget").value();
  }
}

void tally(dispatch::Context<Tally>& ctx, std::int64_t amount) {
  ctx.state().sum += amount;
  ctx.egress("counters/sums", dispatch::stateful::typed_value(ctx.state().sum));
}

void restock(dispatch::Context<Inventory>& ctx, const Restock& r) {
  Inventory& inventory = ctx.state();
  inventory.total += r.amount;
  inventory.grade = r.grade;
  ++inventory.restocks;
  --inventory.low;
  inventory.big += std::uint64_t{1} << 40;
  if (inventory.stock.count(r.item) == 0) inventory.items.push_back(r.item);
  inventory.stock[r.item] += r.amount;
  if (r.amount > 100) {
    if (!inventory.shelves) inventory.shelves.emplace();
    inventory.shelves->push_back(Shelf{"aisle-" + r.item});
  }
  const Receipt receipt{r.item, inventory.stock[r.item], Shelf{"front"}};
  inventory.last = receipt;
  if (ctx.caller()) ctx.reply(receipt).value();
  ctx.egress("inventory/receipts", receipt).value();
  if (r.bad_reply) {
    struct Unknown {
      int x = 0;
    };
    dispatch::Result<void> refused = ctx.egress("inventory/receipts", Unknown{});
    if (refused.ok()) throw std::logic_error("egress() took a struct that is no message of the header");
    ctx.egress("inventory/errors", refused.error().message()).value();
  }
}

}  // namespace greeter
