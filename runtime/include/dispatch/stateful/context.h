// dispatch::Context<State>: what an annotated stateful function gets
// (docs/stateful.md, "The annotated form"):
//
//   struct Seen { std::int32_t count = 0; std::optional<std::string> last_name; };
//   [[dispatch::function]] void greet(dispatch::Context<Seen>& ctx, const GreetRequest& req);
//
// Typed state over the untyped Invocation (endpoint.h): before the call the
// whole state struct is loaded, each field from its persisted value (a field
// never set keeps the struct's default); after it, every field whose
// encoding changed is written back, and a field cleared (or an optional
// field set to nullopt) is deleted. Messages go out typed, through a
// generated stateful function's stub (`ctx.send(greeter::remote::greet,
// "bob", req)`), or raw, by typename and bytes, to a function in any
// language.
//
// Also here: the one StateFun route that serves the stateful functions of
// every generated service in a table (statefun_route()), and the helpers
// generated code calls (run(), the argument decoders). Not for: the
// protocol (endpoint.cc) or sending from outside a function (ingress.h).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "dispatch/core/result.h"
#include "dispatch/core/service.h"
#include "dispatch/stateful/endpoint.h"
#include "dispatch/stateful/value_types.h"

namespace dispatch {
namespace stateful {

// Built-in values with their StateFun typenames (io.statefun.types/...),
// for raw sends, replies and egress records.
TypedValue typed_value(bool value);
TypedValue typed_value(std::int32_t value);
TypedValue typed_value(std::int64_t value);
TypedValue typed_value(float value);
TypedValue typed_value(double value);
TypedValue typed_value(std::string_view value);
inline TypedValue typed_value(const char* value) { return typed_value(std::string_view(value)); }

// One message of a generated header's .proto, for typed replies and egress
// records (Context::reply, Context::egress): its C++ struct, its typename
// (type.googleapis.com/<package>.<Message>) and the generated codec's
// encoder over the struct's address.
struct MessageType {
  const std::type_info* cpp;
  std::string_view type_name;
  std::string (*encode)(const void* value);
};
// The messages of one generated header (generated code makes the table).
struct MessageTypes {
  const MessageType* types = nullptr;
  std::size_t count = 0;
  // The entry of the C++ type `cpp`, or nullptr.
  const MessageType* find(const std::type_info& cpp) const noexcept {
    for (std::size_t i = 0; i < count; ++i)
      if (*types[i].cpp == cpp) return &types[i];
    return nullptr;
  }
};

// The path of the StateFun route generated services bring (a module.yaml's
// urlPathTemplate: http://host:port/statefun).
inline constexpr std::string_view kRoutePath = "/statefun";
// The route itself: a built-in service whose one method answers ToFunction
// batches for the stateful functions of every service in its table
// (Service::stateful_functions); two services serving one function type are
// answered internal. Its companion is the Dispatch protocol's Run route.
const Service& statefun_route();

namespace detail {

// The built-in types a state field or message may have. A signed integer
// is StateFun's int or long by its width, however it is spelled (int, long,
// long long).
template <typename T, typename = void>
struct Builtin;
template <>
struct Builtin<bool> {
  static constexpr std::string_view type = kBoolType;
  static std::string encode(bool v) { return encode_bool(v); }
  static Result<bool> decode(std::string_view b) { return decode_bool(b); }
};
template <typename T>
struct Builtin<T, std::enable_if_t<std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 4>> {
  static constexpr std::string_view type = kIntType;
  static std::string encode(T v) { return encode_int(v); }
  static Result<std::int32_t> decode(std::string_view b) { return decode_int(b); }
};
template <typename T>
struct Builtin<T, std::enable_if_t<std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 8>> {
  static constexpr std::string_view type = kLongType;
  static std::string encode(T v) { return encode_long(static_cast<std::int64_t>(v)); }
  static Result<std::int64_t> decode(std::string_view b) { return decode_long(b); }
};
template <>
struct Builtin<float> {
  static constexpr std::string_view type = kFloatType;
  static std::string encode(float v) { return encode_float(v); }
  static Result<float> decode(std::string_view b) { return decode_float(b); }
};
template <>
struct Builtin<double> {
  static constexpr std::string_view type = kDoubleType;
  static std::string encode(double v) { return encode_double(v); }
  static Result<double> decode(std::string_view b) { return decode_double(b); }
};
template <>
struct Builtin<std::string> {
  static constexpr std::string_view type = kStringType;
  static std::string encode(const std::string& v) { return encode_string(v); }
  static Result<std::string> decode(std::string_view b) { return decode_string(b); }
};

template <typename T, typename = void>
struct IsBuiltin : std::false_type {};
template <typename T>
struct IsBuiltin<T, std::void_t<decltype(Builtin<T>::type)>> : std::true_type {};

// invalid_argument: `cpp` (demangled) is no message of the header that
// declares `function_type`.
Error not_a_message(std::string_view function_type, const std::type_info& cpp);

// A state value that does not decode as its field's type: thrown, which
// fails the batch (the runtime retries it, then dead-letters it).
[[noreturn]] void refuse_state(std::string_view function_type, std::string_view name, const Error& why);

// Each field's encoding (nullopt: absent, an optional field's nullopt).
struct Encoder {
  std::map<std::string, std::optional<std::string>, std::less<>> out;
  template <typename T>
  void value(const char* name, const T& v) {
    out[name] = Builtin<T>::encode(v);
  }
  template <typename T>
  void value(const char* name, const std::optional<T>& v) {
    out[name] = v ? std::optional<std::string>(Builtin<T>::encode(*v)) : std::nullopt;
  }
  template <typename T>
  void message(const char* name, const T& v, std::string (*encode)(const T&), Result<void> (*)(std::string_view, T*)) {
    out[name] = encode(v);
  }
  template <typename T>
  void message(const char* name, const std::optional<T>& v, std::string (*encode)(const T&),
               Result<void> (*)(std::string_view, T*)) {
    out[name] = v ? std::optional<std::string>(encode(*v)) : std::nullopt;
  }
  // A field of a type StateFun has no name for, persisted as the generated
  // one-field message W (its `value` holds the field, or what an optional
  // field holds).
  template <typename W, typename T>
  void wrapped(const char* name, const T& v, std::string (*encode)(const W&), Result<void> (*)(std::string_view, W*)) {
    W w{};
    w.value = v;
    out[name] = encode(w);
  }
  template <typename W, typename T>
  void wrapped(const char* name, const std::optional<T>& v, std::string (*encode)(const W&),
               Result<void> (*)(std::string_view, W*)) {
    if (!v) {
      out[name] = std::nullopt;
      return;
    }
    W w{};
    w.value = *v;
    out[name] = encode(w);
  }
};

// Fills fields from encodings: `lookup(name)` gives nullopt to leave the
// field alone, an absent encoding (optional fields become nullopt) or
// bytes to decode.
template <typename Lookup>
struct Decoder {
  Lookup lookup;
  std::string_view function_type;
  template <typename T, typename D>
  void take(const char* name, T& field, D decode) {
    std::optional<std::optional<std::string>> got = lookup(name);
    if (!got || !*got) return;
    auto decoded = decode(**got);
    if (!decoded.ok()) refuse_state(function_type, name, decoded.error());
    field = std::move(*decoded);
  }
  template <typename T, typename D>
  void take_optional(const char* name, std::optional<T>& field, D decode) {
    std::optional<std::optional<std::string>> got = lookup(name);
    if (!got) return;
    if (!*got) {
      field.reset();
      return;
    }
    auto decoded = decode(**got);
    if (!decoded.ok()) refuse_state(function_type, name, decoded.error());
    field = std::move(*decoded);
  }
  template <typename T>
  void value(const char* name, T& v) {
    take(name, v, &Builtin<T>::decode);
  }
  template <typename T>
  void value(const char* name, std::optional<T>& v) {
    take_optional(name, v, &Builtin<T>::decode);
  }
  template <typename T>
  void message(const char* name, T& v, std::string (*)(const T&), Result<void> (*decode)(std::string_view, T*)) {
    take(name, v, [decode](std::string_view b) -> Result<T> {
      T t{};
      if (auto d = decode(b, &t); !d.ok()) return std::move(d).error();
      return t;
    });
  }
  template <typename T>
  void message(const char* name, std::optional<T>& v, std::string (*)(const T&),
               Result<void> (*decode)(std::string_view, T*)) {
    take_optional(name, v, [decode](std::string_view b) -> Result<T> {
      T t{};
      if (auto d = decode(b, &t); !d.ok()) return std::move(d).error();
      return t;
    });
  }
  template <typename W, typename T>
  void wrapped(const char* name, T& v, std::string (*)(const W&), Result<void> (*decode)(std::string_view, W*)) {
    take(name, v, unwrap<W, T>(decode));
  }
  template <typename W, typename T>
  void wrapped(const char* name, std::optional<T>& v, std::string (*)(const W&),
               Result<void> (*decode)(std::string_view, W*)) {
    take_optional(name, v, unwrap<W, T>(decode));
  }
  template <typename W, typename T>
  static auto unwrap(Result<void> (*decode)(std::string_view, W*)) {
    return [decode](std::string_view b) -> Result<T> {
      W w{};
      if (auto d = decode(b, &w); !d.ok()) return std::move(d).error();
      return T(std::move(w.value));
    };
  }
};
template <typename Lookup>
Decoder<Lookup> decoder(Lookup lookup, std::string_view function_type) {
  return Decoder<Lookup>{std::move(lookup), function_type};
}

}  // namespace detail

// The argument of an invocation as the parameter's type. An argument of
// another typename is thrown as invalid_argument naming what the function
// takes (the batch fails, as in StateFun's SDKs).
[[noreturn]] void refuse_argument(std::string_view function_type, const TypedValue& got,
                                  std::initializer_list<std::string_view> accepted);
template <typename T>
T builtin_argument(std::string_view function_type, const TypedValue& v) {
  if (v.type_name != detail::Builtin<T>::type) refuse_argument(function_type, v, {detail::Builtin<T>::type});
  auto decoded = detail::Builtin<T>::decode(v.value);
  if (!decoded.ok()) throw Error(Code::invalid_argument, std::string(function_type) + ": " + decoded.error().message());
  return std::move(*decoded);
}
template <typename T>
T message_argument(std::string_view function_type, const TypedValue& v, Result<void> (*decode)(std::string_view, T*)) {
  T t{};
  if (auto d = decode(v.value, &t); !d.ok()) {
    throw Error(Code::invalid_argument, std::string(function_type) + ": the argument (" + v.type_name +
                                            ") does not decode: " + d.error().message());
  }
  return t;
}

template <typename Schema, typename State, typename Fn>
void run(Invocation& invocation, const MessageTypes& messages, Fn&& fn);

}  // namespace stateful

// What a stateful function sees and does for one message: its entity, the
// caller, the typed state, and the messages, delayed messages and egress
// records it sends. Lives for one invocation; the state is written back when
// the function returns (not when it throws: a throw fails the whole batch).
template <typename State>
class Context {
 public:
  // The entity: its function type ("greeter/greet") and id.
  const stateful::Address& self() const noexcept { return invocation_.self(); }
  const std::string& id() const noexcept { return invocation_.self().id; }
  // The sender; nullopt for a message from an ingress.
  const std::optional<stateful::Address>& caller() const noexcept { return invocation_.caller(); }

  // The entity's state, mutable: a field never set (or expired, or deleted)
  // holds the struct's default.
  State& state() noexcept { return state_; }
  const State& state() const noexcept { return state_; }
  // Deletes the field `name` (it reads as its default from now on, here and
  // in later invocations, until written again); invalid_argument when the
  // state struct has no such field.
  Result<void> clear(std::string_view name) {
    if (!reset_(state_, name)) {
      return Error(Code::invalid_argument, "state of " + self().type + " has no field '" + std::string(name) + "'");
    }
    cleared_.emplace(name);
    return {};
  }

  // To an entity of a stateful function of ours, typed through its
  // generated stub: ctx.send(greeter::remote::greet, "bob", request).
  template <typename Stub, typename Message, typename = decltype(Stub::function_type)>
  void send(const Stub&, std::string id, const Message& message) {
    invocation_.send(stateful::Address{Stub::function_type, std::move(id)}, Stub::message(message));
  }
  // To any function, in any language: its type, id, and the message's
  // typename and bytes.
  void send(stateful::Address to, stateful::TypedValue message) {
    invocation_.send(std::move(to), std::move(message));
  }
  // The same after `delay`. `cancellation_token`: empty for none; unique
  // among this entity's pending delayed messages; cancel_delayed() takes it.
  template <typename Stub, typename Message, typename = decltype(Stub::function_type)>
  void send_after(std::chrono::milliseconds delay, const Stub&, std::string id, const Message& message,
                  std::string cancellation_token = {}) {
    invocation_.send_after(delay, stateful::Address{Stub::function_type, std::move(id)}, Stub::message(message),
                           std::move(cancellation_token));
  }
  void send_after(std::chrono::milliseconds delay, stateful::Address to, stateful::TypedValue message,
                  std::string cancellation_token = {}) {
    invocation_.send_after(delay, std::move(to), std::move(message), std::move(cancellation_token));
  }
  // Best effort: a delayed message already delivered stays delivered.
  void cancel_delayed(std::string cancellation_token) { invocation_.cancel_delayed(std::move(cancellation_token)); }
  // To the caller; failed_precondition for a message from an ingress.
  Result<void> reply(stateful::TypedValue message) { return invocation_.reply(std::move(message)); }
  // The same typed (typed() below): ctx.reply(receipt), ctx.reply(42).
  template <typename T>
  Result<void> reply(const T& message) {
    auto value = typed(message);
    if (!value.ok()) return std::move(value).error();
    return invocation_.reply(std::move(*value));
  }
  // A record to the egress `name` ("namespace/name").
  void egress(std::string name, stateful::TypedValue record) {
    invocation_.egress(std::move(name), std::move(record));
  }
  // The same typed (typed() below); invalid_argument, and nothing sent, for
  // a struct that is not a message of the function's header.
  template <typename T>
  Result<void> egress(std::string name, const T& record) {
    auto value = typed(record);
    if (!value.ok()) return std::move(value).error();
    invocation_.egress(std::move(name), std::move(*value));
    return {};
  }
  // A value as StateFun carries it: a built-in (bool, a 32- or 64-bit
  // signed integer, float, double, a string) with its io.statefun.types/
  // name; a struct of the function's header (a message of its .proto) as
  // type.googleapis.com/<package>.<Message> with the generated codec's
  // bytes. Another struct is invalid_argument naming it; other types do not
  // compile.
  template <typename T>
  Result<stateful::TypedValue> typed(const T& value) const {
    if constexpr (std::is_convertible_v<const T&, std::string_view>) {
      return stateful::typed_value(std::string_view(value));
    } else if constexpr (stateful::detail::IsBuiltin<T>::value) {
      using B = stateful::detail::Builtin<T>;
      return stateful::TypedValue{std::string(B::type), B::encode(value)};
    } else {
      static_assert(std::is_class_v<T>,
                    "a typed reply or egress record is bool, std::int32_t, std::int64_t, float, double, a string "
                    "or a struct of the function's header; for other types send a stateful::TypedValue");
      const stateful::MessageType* m = messages_.find(typeid(T));
      if (m == nullptr) return stateful::detail::not_a_message(self().type, typeid(T));
      return stateful::TypedValue{std::string(m->type_name), m->encode(&value)};
    }
  }

  // The untyped invocation underneath.
  stateful::Invocation& invocation() noexcept { return invocation_; }

 private:
  template <typename Schema, typename S, typename Fn>
  friend void stateful::run(stateful::Invocation& invocation, const stateful::MessageTypes& messages, Fn&& fn);
  Context(stateful::Invocation& invocation, const stateful::MessageTypes& messages)
      : invocation_(invocation), messages_(messages) {}

  stateful::Invocation& invocation_;
  const stateful::MessageTypes& messages_;
  State state_{};
  std::set<std::string, std::less<>> cleared_;
  bool (*reset_)(State&, std::string_view) = nullptr;
};

namespace stateful {

// Runs one invocation of a generated stateful function: loads the state
// (Schema::fields names each field of State), calls `fn` with the Context,
// writes back what changed. `messages`: the structs of the function's
// header, for typed replies and egress records; it outlives the call.
template <typename Schema, typename State, typename Fn>
void run(Invocation& invocation, const MessageTypes& messages, Fn&& fn) {
  const std::string& type = invocation.self().type;
  Context<State> ctx(invocation, messages);
  auto stored = detail::decoder(
      [&](std::string_view name) -> std::optional<std::optional<std::string>> {
        auto value = invocation.state(name);
        if (!value.ok()) detail::refuse_state(type, name, value.error());
        if (*value == nullptr) return std::nullopt;  // never set: the default
        return std::optional<std::string>((*value)->value);
      },
      type);
  Schema::fields(stored, ctx.state_);
  ctx.reset_ = [](State& state, std::string_view name) {
    State defaults{};
    detail::Encoder encoded;
    Schema::fields(encoded, defaults);
    auto it = encoded.out.find(name);
    if (it == encoded.out.end()) return false;
    auto one = detail::decoder(
        [&](std::string_view field) -> std::optional<std::optional<std::string>> {
          if (field != name) return std::nullopt;
          return it->second;
        },
        "");
    Schema::fields(one, state);
    return true;
  };
  detail::Encoder before;
  Schema::fields(before, ctx.state_);
  std::forward<Fn>(fn)(ctx);
  detail::Encoder after;
  Schema::fields(after, ctx.state_);
  State defaults{};
  detail::Encoder initial;
  Schema::fields(initial, defaults);
  for (const auto& [name, now] : after.out) {
    const bool cleared = ctx.cleared_.count(name) != 0 && now == initial.out[name];
    Result<void> written;
    if (!now || cleared) {
      if (before.out[name] || cleared) written = invocation.clear_state(name);
    } else if (now != before.out[name]) {
      written = invocation.set_state(name, *now);
    }
    if (!written.ok()) detail::refuse_state(type, name, written.error());
  }
}
// The same with no structs to reply with (typed replies of built-ins only).
template <typename Schema, typename State, typename Fn>
void run(Invocation& invocation, Fn&& fn) {
  static const MessageTypes none{};
  run<Schema, State>(invocation, none, std::forward<Fn>(fn));
}

}  // namespace stateful
}  // namespace dispatch
