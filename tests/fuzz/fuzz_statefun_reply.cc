// libFuzzer target: what dispatchd makes of a StateFun endpoint's answer
// (statefun_runtime/batch_codec.h): a FromFunction from any endpoint,
// checked against the batch it answers and turned into store writes. Nothing
// may crash; an accepted reply writes only declared values, within the
// state limit, and messages only to routed function types.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "dispatch/statefun_runtime/module_config.h"
#include "io/statefun/sdk/reqreply/request_reply.pb.h"
#include "statefun_runtime/batch_codec.h"

namespace {

using dispatch::scheduler::BatchResult;
using dispatch::scheduler::EntityBatch;
using dispatch::scheduler::ExpireMode;

constexpr int64_t kNow = 1'000'000;
constexpr std::size_t kMaxStateBytes = 4096;

const dispatch::statefun::ModuleConfig& modules() {
  static const auto* m = new dispatch::statefun::ModuleConfig(dispatch::statefun::ModuleConfig::parse(
                                                                 R"(kind: io.statefun.endpoints.v2/http
spec:
  functions: fz/*
  urlPathTemplate: http://127.0.0.1:8000/statefun/{function.name}
)")
                                                                 .value());
  return *m;
}

EntityBatch batch() {
  EntityBatch b;
  b.address = {"fz/counter", "c1"};
  b.specs = {{"seen", "io.statefun.types/int", ExpireMode::after_invoke, 1'000},
             {"last", "io.statefun.types/string", ExpireMode::after_write, 2'000},
             {"blob", "fz/Blob", ExpireMode::none, 0}};
  b.state = {{"seen", "io.statefun.types/int", "\x08\x01", 0}};
  dispatch::scheduler::QueuedMessage q;
  q.seq = 1;
  q.message.target = b.address;
  q.message.caller = {"fz/user", "u1"};
  q.message.type_name = "io.statefun.types/string";
  q.message.has_value = true;
  q.message.value = "x";
  b.messages.push_back(q);
  return b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ::io::statefun::sdk::reqreply::FromFunction from;
  if (!from.ParseFromArray(data, static_cast<int>(size)) || !from.has_invocation_result()) return 0;
  BatchResult out;
  static const EntityBatch kBatch = batch();
  if (dispatch::statefun::to_batch_result(kBatch, from.invocation_result(), kNow, modules(), kMaxStateBytes, out)) {
    return 0;  // refused, with a reason
  }
  for (const auto& m : out.mutations) {
    if (m.name != "seen" && m.name != "last" && m.name != "blob") std::abort();
    if (!m.remove && m.value.size() > kMaxStateBytes) std::abort();
  }
  for (const auto& o : out.outgoing) {
    if (o.target.type.rfind("fz/", 0) != 0) std::abort();
  }
  return 0;
}
