// dispatch::stateful::StatefulFunctions: the endpoint side of Apache Flink
// StateFun's request-reply protocol. Functions are registered by function
// type ("namespace/name") with the state values they declare; one route of
// a server answers every ToFunction batch for all of them: the missing-state
// handshake (IncompleteInvocationContext listing every declared value the
// request did not carry), then each invocation of the batch in order with
// state carried from one to the next, and one FromFunction with the values
// that changed, the messages sent, delayed messages and cancellations, and
// egress records. The same route serves dispatchd (--statefun-module) and a
// Flink StateFun cluster (a remote module).
//
//   dispatch::stateful::StatefulFunctions fns;
//   fns.add({"greeter/greet", {{"seen", std::string(kIntType)}},
//            [](dispatch::stateful::Invocation& ctx) { ... }}).value();
//   dispatch::DispatchTable table;
//   fns.add_to(table, "/statefun").value();
//   dispatch::Server server(table, options);   // POST /statefun
//
// Invocation is the untyped context; generated code wraps it in a typed
// dispatch::Context<State>.
// Not for: the runtime side (dispatch/statefun_runtime/). Public header:
// compiles as C++17 and C++20.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/result.h"
#include "dispatch/core/service.h"

namespace dispatch::stateful {

// A function type ("namespace/name") and an entity id.
struct Address {
  std::string type;
  std::string id;
  friend bool operator==(const Address& a, const Address& b) { return a.type == b.type && a.id == b.id; }
};

// A value with its StateFun typename. has_value false: explicitly absent.
struct TypedValue {
  std::string type_name;
  std::string value;
  bool has_value = true;
};

enum class Expire { never = 0, after_write = 1, after_invoke = 2 };

// A persisted value a function declares.
struct ValueSpec {
  std::string name;       // the state name
  std::string type_name;  // its typename
  Expire expire = Expire::never;
  std::chrono::milliseconds ttl{0};
};

struct StatefulFunction;
// What StatefulFunctions::handle() does, over functions found by
// `lookup` (by function type; nullptr when none is served, an error to
// answer instead). The StateFun route of generated services
// (statefun_route(), dispatch/stateful/context.h) finds them in its table.
using FunctionLookup = std::function<Result<const StatefulFunction*>(std::string_view type)>;
Result<std::string> handle_batch(std::string_view to_function, const FunctionLookup& lookup);

// What one invocation of a batch sees and does. State persists across the
// invocations of a batch and, through the runtime, across batches.
class Invocation {
 public:
  const Address& self() const noexcept { return self_; }
  // The sender; nullopt for a message from an ingress.
  const std::optional<Address>& caller() const noexcept { return caller_; }
  const TypedValue& argument() const noexcept { return argument_; }

  // A declared value: nullptr when it is absent (never written, deleted or
  // expired). Reading an undeclared name is invalid_argument.
  Result<const TypedValue*> state(std::string_view name) const;
  // Writes a declared value (with its declared typename).
  Result<void> set_state(std::string_view name, std::string value);
  // Deletes a declared value.
  Result<void> clear_state(std::string_view name);

  void send(Address to, TypedValue message);
  // `cancellation_token`: empty for none; unique among this entity's
  // pending delayed messages.
  void send_after(std::chrono::milliseconds delay, Address to, TypedValue message,
                  std::string cancellation_token = {});
  // Best effort: a message already delivered stays delivered.
  void cancel_delayed(std::string cancellation_token);
  // send() to the caller; failed_precondition when there is none.
  Result<void> reply(TypedValue message);
  // A record to the egress `egress` ("namespace/name").
  void egress(std::string egress, TypedValue record);

  // The state as the batch carries it (for typed wrappers).
  struct Cell {
    const ValueSpec* spec = nullptr;
    std::optional<TypedValue> value;
    bool dirty = false;
  };

 private:
  friend class StatefulFunctions;
  friend Result<std::string> handle_batch(std::string_view to_function, const FunctionLookup& lookup);
  struct Delayed {
    std::chrono::milliseconds delay{0};
    Address to;
    TypedValue message;
    std::string token;
    bool cancel = false;
  };
  Address self_;
  std::optional<Address> caller_;
  TypedValue argument_;
  std::map<std::string, Cell, std::less<>>* cells_ = nullptr;
  std::vector<std::pair<Address, TypedValue>> sent_;
  std::vector<Delayed> delayed_;
  std::vector<std::pair<std::string, TypedValue>> egress_;
};

struct StatefulFunction {
  std::string type;  // "namespace/name"
  std::vector<ValueSpec> specs;
  // Runs one invocation; what it throws fails the whole batch (the runtime
  // retries it), as in StateFun's SDKs.
  std::function<void(Invocation&)> fn;
};

class StatefulFunctions {
 public:
  StatefulFunctions();
  ~StatefulFunctions();
  StatefulFunctions(const StatefulFunctions&) = delete;
  StatefulFunctions& operator=(const StatefulFunctions&) = delete;

  // invalid_argument for a type that is not "namespace/name", a second
  // function of one type, a spec without a name or typename, or a name
  // declared twice.
  Result<void> add(StatefulFunction function);

  // Adds the route answering ToFunction at `path` (one route for every
  // function here) to `table`; this object must outlive it.
  Result<void> add_to(DispatchTable& table, std::string path = "/statefun");

  // What the route answers for one ToFunction body: a serialized
  // FromFunction, or invalid_argument (not a ToFunction, no invocation
  // batch), not_found (no function of the target's type), failed_precondition
  // (a value arrives with another typename than declared). What a function
  // throws escapes (on the route, DispatchTable::invoke() maps it).
  Result<std::string> handle(std::string_view to_function) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};


}  // namespace dispatch::stateful
