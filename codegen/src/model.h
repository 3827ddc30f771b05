// The generator's model: plain structs that describe annotated functions and
// the types they use. The front end (libclang) fills it, the naming pass
// assigns proto names, the back ends (C++ emitter, .proto emitter) read it.
// No libclang type crosses this line; everything here is value data, so a
// back end can be tested from a hand-built Model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dispatch::gen {

struct SourceLocation {
  std::string file;  // as the user named it (or as clang reports it)
  unsigned line = 0;
  unsigned column = 0;
};

enum class TypeKind {
  kVoid,       // function results only
  kBool,
  kInt,        // any integer type; see TypeRef::bits / is_signed
  kFloat,
  kDouble,
  kString,     // std::string
  kBytes,      // std::vector<std::byte> or std::vector<std::uint8_t>
  kVector,     // std::vector<args[0]>, or std::set / std::unordered_set (see TypeRef::set)
  kOptional,   // std::optional<args[0]>
  kMap,        // std::map / std::unordered_map<args[0], args[1]>; key is kInt, kBool or kString
  kEnum,       // Model::enums[decl]
  kStruct,     // Model::structs[decl]
  kDuration,   // std::chrono::duration<rep, ratio>  -> google.protobuf.Duration
  kTimestamp,  // std::chrono::system_clock::time_point -> google.protobuf.Timestamp
  kVariant,    // std::variant<args...>: a message holding one `oneof` (naming.h)
  kCloudEvent, // dispatch::CloudEvent: `bytes` holding the CloudEvents protobuf format;
               // only an event function's parameter or (optional) result
};

struct TypeRef {
  TypeKind kind = TypeKind::kVoid;
  // The C++ spelling the generated code uses, fully qualified and
  // typedef-free: "std::int64_t", "::shop::Item", "std::vector<::shop::Item>",
  // "std::chrono::duration<long, std::ratio<1, 1000>>".
  std::string cpp;
  // kInt: width in bits (8, 16, 32, 64) and signedness of the canonical type.
  unsigned bits = 0;
  bool is_signed = false;
  // kBytes: true for std::vector<std::byte>, false for std::vector<uint8_t>.
  bool std_byte = false;
  // kMap: true for std::unordered_map. kVector with `set`: true for
  // std::unordered_set.
  bool unordered = false;
  // kVector: a std::set or std::unordered_set (repeated on the wire, like a
  // vector; elements are integers, bool, enums or strings).
  bool set = false;
  // kDuration: the ratio num/den of one tick in seconds; the rep is args[0]
  // (kInt, kFloat or kDouble). kTimestamp: the time_point's duration, args[0].
  std::int64_t ratio_num = 1;
  std::int64_t ratio_den = 1;
  // kVector, kOptional: [element]; kMap: [key, value]; kDuration: [rep];
  // kTimestamp: [duration]; kVariant: the alternatives, in order.
  std::vector<TypeRef> args;
  // kEnum, kStruct: index into Model::enums / Model::structs.
  std::size_t decl = 0;
};

struct Field {
  std::string name;      // C++ member name, also the proto field name
  TypeRef type;
  std::uint32_t number;  // 1..n in declaration order
  SourceLocation loc;
  bool deprecated = false;  // [[deprecated]]: `[deprecated = true]` in the .proto
};

struct StructDecl {
  std::string cpp;         // "::shop::Order"
  std::string proto_name;  // message name in the emitted .proto, e.g. "Order"
  std::vector<Field> fields;
  SourceLocation loc;
  // Not the user's: the message a stateful function's state field of a
  // type StateFun has no name for is persisted as (docs/stateful.md), named
  // "<State>_<field>" with one field, `value = 1`, of the field's type
  // (its content, for a std::optional field). This is the field,
  // "greeter::Inventory::stock". The generated header declares its C++
  // struct in <ns>::remote; the naming pass sets `cpp` to it.
  std::string state_field = {};
  // A function or variable of its scope has its name (`struct stat` beside
  // `stat()`), which hides the plain name: generated code writes
  // `struct ::ns::stat` (type_cpp).
  bool hidden = false;
};

struct EnumValue {
  std::string name;       // C++ enumerator, "pending"
  std::string proto_name; // proto enumerator, unique in the package: "STATUS_PENDING"
  std::int64_t value;
};

struct EnumDecl {
  std::string cpp;         // "::shop::Status"
  std::string proto_name;  // "Status"
  bool scoped = false;     // enum class
  TypeRef underlying;      // kInt
  std::vector<EnumValue> values;  // declaration order
  // proto3 needs a zero first value; when the C++ enum has none, the .proto
  // gets "<NAME>_UNSPECIFIED = 0", which C++ reads as the value-initialized
  // enum (0), as it reads an absent field.
  bool synthetic_zero = false;
  SourceLocation loc;
  // As StructDecl::hidden: `enum ::ns::mode` beside a function `mode()`.
  bool hidden = false;
};

// How generated code names a struct or enum as a type: its qualified name,
// elaborated (`struct ::h::status`) when a function or variable hides it.
inline std::string type_cpp(const StructDecl& s) { return s.hidden ? "struct " + s.cpp : s.cpp; }
inline std::string type_cpp(const EnumDecl& e) { return e.hidden ? "enum " + e.cpp : e.cpp; }

struct Parameter {
  std::string name;
  TypeRef type;
  bool by_const_ref = false;
  SourceLocation loc;
  // The default argument as written in the annotated declaration, tokens
  // joined by spaces ("2", "{}", "kLimit * 2"); empty when there is none.
  std::string default_arg = {};
  // A view parameter (`std::string_view`, `std::span<const T>`): the C++
  // spelling the stub takes ("std::string_view"). `type` is then the owning
  // type the request holds and the wire carries (std::string,
  // std::vector<T>, bytes); the server passes the decoded value, which
  // converts to the view. Empty for every other parameter.
  std::string view_cpp = {};
};

// A function's idempotency level (google.protobuf.MethodOptions'
// IdempotencyLevel): unknown (the default: it may change things and a retry
// may repeat them), idempotent, or no_side_effects.
enum class Idempotency { unknown, idempotent, no_side_effects };
// The annotation's spelling of a level, idempotency = "..." ("" for unknown,
// which has none).
inline const char* idempotency_name(Idempotency level) {
  switch (level) {
    case Idempotency::idempotent:
      return "idempotent";
    case Idempotency::no_side_effects:
      return "no_side_effects";
    case Idempotency::unknown:
      break;
  }
  return "";
}

struct Function {
  std::string cpp;          // "::shop::charge" (what the server half calls)
  std::string cpp_namespace;  // "shop" ("" for the global namespace; "a::b" nested)
  std::string name;         // C++ name, "charge"
  std::string remote_name;  // "charge_v2" (attribute argument) or the C++ name
  std::vector<Parameter> params;
  // kVoid for void. A workflow's is the T of its dispatch::Workflow<T>:
  // what its response message holds and its stub gives.
  TypeRef result;
  std::string request_message;   // proto message name, e.g. "ChargeV2Request"
  std::string response_message;  // "ChargeV2Response"
  SourceLocation loc;
  // [[deprecated]] or [[deprecated("why")]]: the stub is deprecated too (so
  // callers are warned), and the rpc gets `option deprecated = true`.
  bool deprecated = false;
  std::string deprecated_message = {};
  // [[dispatch::event]]: the function also takes CloudEvents (docs/events.md):
  // a parameter of kCloudEvent, if any, is the whole event, the other one, if
  // any, the event's data; a result of kCloudEvent (or std::optional of it)
  // is the reply event, any other result the reply's data.
  bool event = false;
  std::string event_type = {};  // the event type it takes; "" any
  std::string reply_type = {};  // the reply event's type; "" the default
  // Declared as returning dispatch::Workflow<T> (docs/workflows.md): a
  // durable coroutine, served through the Dispatch protocol's Run (Poll and
  // resume) and refused on its direct route; `result` is T.
  bool workflow = false;
  // A workflow's version pinned by its annotation,
  // [[dispatch::function(version = "3")]]: what its Definition carries and
  // a journal must have been written by. Empty: generated from its name and
  // wire shape (cpp/server_printer.cc). Only a workflow has one.
  std::string version = {};
  // [[dispatch::function(idempotency = "...")]]: what a call does to the
  // world, as the .proto's idempotency_level says it (descriptor.proto's
  // MethodOptions): no_side_effects lets Connect clients call it with GET
  // (cacheable), idempotent tells clients a retry is safe. Plain functions
  // only.
  Idempotency idempotency = Idempotency::unknown;
};

// A persisted value of a stateful function: one field of its state struct
// (docs/stateful.md). Its StateFun typename follows from `type` (a built-in
// name, or type.googleapis.com/<package>.<Message>): bool, a 32- or 64-bit
// signed integer, float, double and std::string have StateFun's names, a
// struct its message's; any other type is persisted as the message
// Model::structs[*wrapper]. A std::optional field holds one of these
// (nullopt: absent).
struct StateField {
  std::string name;  // the C++ member name, also the state name
  TypeRef type;
  // The state wrapper message (StructDecl::state_field) holding the value,
  // for a type with neither a StateFun name nor a message of its own.
  std::optional<std::size_t> wrapper = std::nullopt;
  enum class Expire { never, after_write, after_invoke };
  Expire expire = Expire::never;
  std::int64_t expire_ms = 0;
  SourceLocation loc;
};

// [[dispatch::function]] void f(dispatch::Context<State>& ctx, const M& message):
// a stateful function (Apache Flink StateFun's model), served on the StateFun
// route, not as a method. `message` is a struct, a built-in (as StateFun
// names them) or a std::variant of those, one per message type it takes.
struct StatefulFunction {
  std::string cpp;            // "::greeter::greet"
  std::string cpp_namespace;  // "greeter"
  std::string name;           // "greet"
  // The annotation's [[dispatch::function("x")]] name, or the C++ name.
  std::string remote_name;
  // "namespace/name": the annotation's [[dispatch::function("ns/name")]],
  // or "<package>/<remote_name>" (naming pass).
  std::string function_type;
  std::string state_cpp;      // "::greeter::Seen"
  std::vector<StateField> state;
  std::string message_name;   // the parameter's name
  TypeRef message;
  SourceLocation loc;
};

// [[dispatch::faas("name")]] R f(P p): a typed proxy of a function we did
// not build, on an OpenFaaS gateway (docs/deploy.md, "Typed proxies"). The
// declaration has no implementation; the generated proxy posts its one
// parameter as the request body and reads the result from the output. No
// server route and no rpc in the .proto: the function is not ours. Its
// struct types are messages of the .proto all the same (their JSON mapping
// is protobuf's for those messages).
struct FaasFunction {
  std::string cpp;            // "::figlet::render"
  std::string cpp_namespace;  // "figlet": the proxy is <ns>::faas::<name>
  std::string name;           // "render"
  std::string faas_name;      // the function on the gateway: "figlet", "fibonacci.openfaas-fn"
  // The body: at most one parameter, a std::string (or std::string_view),
  // bytes, or a struct. None: an empty body.
  std::vector<Parameter> params;
  // The output read as: kVoid (ignored), kString, kBytes, or kStruct. The
  // declaration may spell it dispatch::Result<T>; `result` is then T.
  TypeRef result;
  SourceLocation loc;
};

// Everything one annotated header yields.
struct Model {
  std::string input;         // the header as named on the command line
  std::string include_name;  // how generated code #includes it, e.g. "shop/api.h"
  std::string stem;          // file name without extension, "api"
  std::string package;       // "shop" ("" = no package)
  std::string service;       // "ApiService" (see docs/annotations.md)
  // The namespace (C++, "::"-joined, "" for global) where the generated
  // per-header entities live: the innermost namespace enclosing all functions.
  std::string cpp_namespace;
  std::string proto_file;    // name of the emitted .proto, "api.proto"
  std::vector<Function> functions;  // source order
  std::vector<StatefulFunction> stateful;  // source order
  std::vector<FaasFunction> faas;  // source order
  std::vector<StructDecl> structs;  // dependencies before dependents
  std::vector<EnumDecl> enums;
  std::vector<std::string> headers_read;  // every file clang opened, for the depfile
};

// One file a back end produces, relative to --out-dir.
struct OutputFile {
  std::string path;
  std::string content;
};

}  // namespace dispatch::gen
