// A stateful function served on dispatch::Server, written against the
// request-reply protocol's own messages (libprotobuf classes of
// request_reply.proto), for the tests and the benchmark that drive dispatchd
// as a StateFun runtime. test/counter keeps "count" (int), "last" (long:
// the sequence number of the last message, which must grow by one per
// message: a gap or a repeat counts in "disorder"), "ticks" (int) and
// "repeats" (int: messages that came again, n not above "last"). A
// message is a long n: n > 0 is the address's n-th message; n < 0 also arms
// a delayed tick in 100 ms (token "t<n>"); 0 is a tick. So that a test can
// tell a tick that came early, the function also keeps "armed" (string: the
// wall-clock milliseconds at which it armed the ticks not yet arrived, in
// order), "early" (int: ticks that arrived less than 100 ms after the
// earliest tick still armed; never more than the ticks that truly came
// early, whatever order ticks arrive in) and "min_wait" (long: the least
// time from arming to a tick's arrival so far, once a tick came). With
// --egress NAMESPACE/TYPE, each counted message also writes its n (long)
// there.
// Usage: counter_endpoint --port N [--port-file PATH] [--egress NAMESPACE/TYPE]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <sstream>
#include <string>

#include "dispatch/stateful/value_types.h"
#include "dispatch/transport/server.h"
#include "io/statefun/sdk/reqreply/request_reply.pb.h"

namespace {

namespace pb = ::io::statefun::sdk::reqreply;
namespace st = ::dispatch::stateful;

// --egress: where counted messages are also written (empty: nowhere).
std::string egress_namespace, egress_type;

constexpr int64_t kTickDelayMs = 100;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void declare(pb::FromFunction& res, const char* name, std::string_view type) {
  auto* spec = res.mutable_incomplete_invocation_context()->add_missing_values();
  spec->set_state_name(name);
  spec->set_type_typename(std::string(type));
}

void modify(pb::FromFunction::InvocationResponse* r, const char* name, std::string_view type, std::string value) {
  auto* m = r->add_state_mutations();
  m->set_mutation_type(pb::FromFunction::PersistedValueMutation::MODIFY);
  m->set_state_name(name);
  m->mutable_state_value()->set_typename_(std::string(type));
  m->mutable_state_value()->set_has_value(true);
  m->mutable_state_value()->set_value(std::move(value));
}

dispatch::Result<std::string> handle(const dispatch::MethodCall& call) {
  pb::ToFunction req;
  if (!req.ParseFromArray(call.request.data(), static_cast<int>(call.request.size()))) {
    return dispatch::Error(dispatch::Code::invalid_argument, "not a ToFunction");
  }
  const auto& batch = req.invocation();
  const pb::TypedValue* count = nullptr;
  const pb::TypedValue* last = nullptr;
  const pb::TypedValue* ticks = nullptr;
  const pb::TypedValue* disorder = nullptr;
  const pb::TypedValue* armed = nullptr;
  const pb::TypedValue* early = nullptr;
  const pb::TypedValue* min_wait = nullptr;
  const pb::TypedValue* repeats = nullptr;
  for (const auto& s : batch.state()) {
    if (s.state_name() == "count") count = &s.state_value();
    if (s.state_name() == "last") last = &s.state_value();
    if (s.state_name() == "ticks") ticks = &s.state_value();
    if (s.state_name() == "disorder") disorder = &s.state_value();
    if (s.state_name() == "armed") armed = &s.state_value();
    if (s.state_name() == "early") early = &s.state_value();
    if (s.state_name() == "min_wait") min_wait = &s.state_value();
    if (s.state_name() == "repeats") repeats = &s.state_value();
  }
  pb::FromFunction res;
  if (!count) declare(res, "count", st::kIntType);
  if (!last) declare(res, "last", st::kLongType);
  if (!ticks) declare(res, "ticks", st::kIntType);
  if (!disorder) declare(res, "disorder", st::kIntType);
  if (!armed) declare(res, "armed", st::kStringType);
  if (!early) declare(res, "early", st::kIntType);
  if (!min_wait) declare(res, "min_wait", st::kLongType);
  if (!repeats) declare(res, "repeats", st::kIntType);
  if (res.has_incomplete_invocation_context()) return res.SerializeAsString();
  auto read_int = [](const pb::TypedValue* v) { return v->has_value() ? st::decode_int(v->value()).value() : 0; };
  int32_t n_count = read_int(count), n_ticks = read_int(ticks), n_disorder = read_int(disorder);
  int64_t n_last = last->has_value() ? st::decode_long(last->value()).value() : 0;
  int32_t n_early = read_int(early), n_repeats = read_int(repeats);
  int64_t n_min_wait = min_wait->has_value() ? st::decode_long(min_wait->value()).value()
                                             : std::numeric_limits<int64_t>::max();
  std::deque<int64_t> armed_at;
  if (armed->has_value()) {
    std::istringstream times(st::decode_string(armed->value()).value());
    for (int64_t t; times >> t;) armed_at.push_back(t);
  }
  const int64_t now = wall_ms();
  auto* r = res.mutable_invocation_result();
  for (const auto& inv : batch.invocations()) {
    auto n = st::decode_long(inv.argument().value());
    if (!n.ok()) return dispatch::Error(dispatch::Code::invalid_argument, n.error().message());
    if (*n == 0) {
      ++n_ticks;
      if (!armed_at.empty()) {
        const int64_t waited = now - armed_at.front();
        armed_at.pop_front();
        if (waited < kTickDelayMs) ++n_early;
        n_min_wait = std::min(n_min_wait, waited);
      }
      continue;
    }
    const int64_t seq = *n > 0 ? *n : -*n;
    if (seq != n_last + 1) ++n_disorder;
    if (seq <= n_last) ++n_repeats;
    n_last = seq;
    ++n_count;
    if (!egress_type.empty()) {
      auto* e = r->add_outgoing_egresses();
      e->set_egress_namespace(egress_namespace);
      e->set_egress_type(egress_type);
      e->mutable_argument()->set_typename_(std::string(st::kLongType));
      e->mutable_argument()->set_has_value(true);
      e->mutable_argument()->set_value(st::encode_long(*n));
    }
    if (*n < 0) {
      auto* d = r->add_delayed_invocations();
      d->set_delay_in_ms(kTickDelayMs);
      *d->mutable_target() = batch.target();
      d->mutable_argument()->set_typename_(std::string(st::kLongType));
      d->mutable_argument()->set_has_value(true);
      d->mutable_argument()->set_value(st::encode_long(0));
      d->set_cancellation_token("t" + std::to_string(seq));
      armed_at.push_back(now);
    }
  }
  std::string armed_text;
  for (int64_t t : armed_at) armed_text += (armed_text.empty() ? "" : " ") + std::to_string(t);
  modify(r, "count", st::kIntType, st::encode_int(n_count));
  modify(r, "last", st::kLongType, st::encode_long(n_last));
  modify(r, "ticks", st::kIntType, st::encode_int(n_ticks));
  modify(r, "disorder", st::kIntType, st::encode_int(n_disorder));
  modify(r, "armed", st::kStringType, st::encode_string(armed_text));
  modify(r, "early", st::kIntType, st::encode_int(n_early));
  modify(r, "repeats", st::kIntType, st::encode_int(n_repeats));
  if (n_min_wait != std::numeric_limits<int64_t>::max()) {
    modify(r, "min_wait", st::kLongType, st::encode_long(n_min_wait));
  }
  return res.SerializeAsString();
}

const dispatch::Method kMethods[] = {
    {"statefun", "/statefun", "io.statefun.sdk.reqreply.ToFunction", "io.statefun.sdk.reqreply.FromFunction", &handle},
};
const dispatch::Service kService{"", "CounterEndpoint", kMethods, 1, {}};

}  // namespace

int main(int argc, char** argv) {
  dispatch::ServerOptions options;
  std::string port_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--port") options.port = static_cast<uint16_t>(std::atoi(argv[i + 1]));
    if (flag == "--port-file") port_file = argv[i + 1];
    if (flag == "--egress") {
      const std::string name = argv[i + 1];
      const std::size_t slash = name.rfind('/');
      if (slash == std::string::npos || slash == 0 || slash + 1 == name.size()) {
        std::fprintf(stderr, "counter_endpoint: --egress '%s' is not NAMESPACE/TYPE\n", name.c_str());
        return 2;
      }
      egress_namespace = name.substr(0, slash);
      egress_type = name.substr(slash + 1);
    }
  }
  options.logger = dispatch::Logger::from_env();
  dispatch::DispatchTable table{&kService};
  dispatch::Server server(table, options);
  server.handle_signals();
  auto started = server.start();
  if (!started.ok()) {
    std::fprintf(stderr, "counter_endpoint: %s\n", started.error().what());
    return 1;
  }
  if (!port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%u\n", static_cast<unsigned>(server.port()));
      std::fclose(f);
      std::rename(tmp.c_str(), port_file.c_str());
    }
  }
  return server.run().ok() ? 0 : 1;
}
