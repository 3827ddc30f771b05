// The typed side of stateful functions (dispatch/stateful/context.h): the
// built-in typed values, the refusals generated code throws, and the one
// StateFun route that finds the stateful functions of every service in its
// table. Not for: the protocol (endpoint.cc).
#include "dispatch/stateful/context.h"

#include <cxxabi.h>
#include <google/protobuf/descriptor.pb.h>

#include <cstdlib>
#include <memory>

#include "dispatch/durable/function_service.h"
#include "io/statefun/sdk/reqreply/request_reply.pb.h"

namespace dispatch::stateful {
namespace {

// Finds `type` among the stateful functions of the table's services.
Result<const StatefulFunction*> find_in(const DispatchTable& table, std::string_view type) {
  const StatefulFunction* found = nullptr;
  const Service* found_in = nullptr;
  for (const Service* s : table.services()) {
    for (std::size_t i = 0; i < s->stateful_function_count; ++i) {
      if (s->stateful_functions[i].type != type) continue;
      if (found) {
        return Error(Code::internal, "stateful function type " + std::string(type) + " is served twice, by " +
                                         found_in->package + "." + found_in->name + " and " + s->package + "." +
                                         s->name + "; give one of them another type");
      }
      found = &s->stateful_functions[i];
      found_in = s;
    }
  }
  return found;
}

Result<std::string> answer(const MethodCall& call) {
  return handle_batch(call.request, [&](std::string_view type) { return find_in(call.table, type); });
}

}  // namespace

TypedValue typed_value(bool value) { return {std::string(kBoolType), encode_bool(value)}; }
TypedValue typed_value(std::int32_t value) { return {std::string(kIntType), encode_int(value)}; }
TypedValue typed_value(std::int64_t value) { return {std::string(kLongType), encode_long(value)}; }
TypedValue typed_value(float value) { return {std::string(kFloatType), encode_float(value)}; }
TypedValue typed_value(double value) { return {std::string(kDoubleType), encode_double(value)}; }
TypedValue typed_value(std::string_view value) { return {std::string(kStringType), encode_string(value)}; }

const Service& statefun_route() {
  static const std::string descriptor = [] {
    google::protobuf::FileDescriptorProto file;
    ::io::statefun::sdk::reqreply::ToFunction::descriptor()->file()->CopyTo(&file);
    return file.SerializeAsString();
  }();
  static const Method method{"statefun", kRoutePath.data(), "io.statefun.sdk.reqreply.ToFunction",
                             "io.statefun.sdk.reqreply.FromFunction", &answer};
  static const Service route{"io.statefun.sdk.reqreply", "RequestReply", &method, 1, descriptor,
                             &function_service()};
  return route;
}

void detail::refuse_state(std::string_view function_type, std::string_view name, const Error& why) {
  throw Error(why.code(), "state '" + std::string(name) + "' of " + std::string(function_type) + ": " + why.message());
}

Error detail::not_a_message(std::string_view function_type, const std::type_info& cpp) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(cpp.name(), nullptr, nullptr, &status),
                                                   &std::free);
  const std::string name = status == 0 && demangled ? demangled.get() : cpp.name();
  return Error(Code::invalid_argument,
               std::string(function_type) + ": '" + name +
                   "' is not a message of the header that declares this function (its .proto has no message for "
                   "it); use a struct that header's functions use, or send a dispatch::stateful::TypedValue");
}

void refuse_argument(std::string_view function_type, const TypedValue& got,
                     std::initializer_list<std::string_view> accepted) {
  std::string takes;
  for (std::string_view a : accepted) takes += (takes.empty() ? "" : " or ") + std::string(a);
  throw Error(Code::invalid_argument, std::string(function_type) + " takes " + takes + ", not a message of type '" +
                                          got.type_name + "'");
}

}  // namespace dispatch::stateful
