// libFuzzer target: the StateFun endpoint (dispatch/stateful/endpoint.h) on
// a ToFunction body, as a StateFun runtime (dispatchd, Flink) sends it. The
// function declares three values (one with expiration) and, per
// invocation, decodes its state and argument as built-in types, writes,
// clears, sends, sends later and cancels, replies and emits, so the state
// carried across a batch and every part of the answer is exercised. Nothing
// may crash; an answer must be a FromFunction that parses, naming only the
// declared values.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "dispatch/stateful/endpoint.h"
#include "dispatch/stateful/value_types.h"
#include "io/statefun/sdk/reqreply/request_reply.pb.h"

namespace {

using namespace dispatch::stateful;

void counter(Invocation& ctx) {
  int32_t n = 0;
  if (auto seen = ctx.state("seen"); seen.ok() && *seen != nullptr) {
    if (auto v = decode_int((*seen)->value); v.ok()) n = *v;
  }
  (void)ctx.set_state("seen", encode_int(n + 1));
  const TypedValue& arg = ctx.argument();
  if (arg.type_name == kStringType) {
    if (auto text = decode_string(arg.value); text.ok()) {
      (void)ctx.set_state("last", encode_string(*text));
      if (text->size() % 2 == 0) (void)ctx.clear_state("last");
      ctx.send({"fz/other", *text}, {std::string(kStringType), arg.value});
      ctx.send_after(std::chrono::milliseconds(text->size()), ctx.self(), arg, *text);
      if (text->size() % 3 == 0) ctx.cancel_delayed(*text);
    }
  }
  (void)ctx.reply({std::string(kIntType), encode_int(n)});
  ctx.egress("fz/out", arg);
  (void)ctx.state("undeclared");
}

const StatefulFunctions& functions() {
  static StatefulFunctions* fns = [] {
    auto* f = new StatefulFunctions;
    (void)f->add({"fz/counter",
                  {{"seen", std::string(kIntType)},
                   {"last", std::string(kStringType), Expire::after_write, std::chrono::milliseconds(1000)},
                   {"blob", "fz/Blob"}},
                  &counter});
    (void)f->add({"fz/other", {}, [](Invocation&) {}});
    return f;
  }();
  return *fns;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto answer = functions().handle(body);
  if (!answer.ok()) return 0;
  ::io::statefun::sdk::reqreply::FromFunction from;
  if (!from.ParseFromString(*answer)) std::abort();
  static const std::set<std::string> declared{"seen", "last", "blob"};
  if (from.has_invocation_result()) {
    for (const auto& m : from.invocation_result().state_mutations()) {
      if (declared.count(m.state_name()) == 0) std::abort();
    }
  } else if (from.has_incomplete_invocation_context()) {
    for (const auto& spec : from.incomplete_invocation_context().missing_values()) {
      if (declared.count(spec.state_name()) == 0) std::abort();
    }
  }
  return 0;
}
