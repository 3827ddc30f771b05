// dispatchctl: operations on a running dispatchd through its API — a call's
// status and result, lists by state, a call's tree of calls and a
// workflow's history (child workflows expanded), cancel, retry, and
// dispatching a call by hand. Human-readable by default, --json for scripts
// (protobuf's JSON mapping of dispatch.scheduler.v1 messages). Given the
// endpoint's .proto files or a descriptor set, inputs and outputs show as
// JSON and `dispatch` takes its input as JSON (message_types.h).
//
//   dispatchctl status 3f2a...          dispatchctl list failed --json
//   dispatchctl cancel 3f2a...          dispatchctl retry 3f2a...
//
// Not for: talking to the store file directly (dispatchd owns it).
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "dispatch/durable/dispatch_client.h"
#include "dispatch/scheduler/store.h"
#include "dispatch/scheduler/v1/admin.pb.h"
#include "dispatch/stateful/value_types.h"
#include "dispatch/statefun/v1/runtime.pb.h"
#include "dispatch/transport/http_client.h"
#include "durable/protocol.h"
#include "message_types.h"

namespace {

namespace admin = ::dispatch::scheduler::v1;

constexpr const char* kUsage = R"(usage: dispatchctl [--url URL] [--api-key KEY] [--json]
                   [--proto FILE]... [-I DIR]... [--descriptor-set FILE]... COMMAND

  status ID [--wait-ms N]   a call's state, attempts, last status, result or error
  list [STATE] [--limit N] [--after ID]
                            calls, oldest first; STATE: pending, running,
                            suspended, completed, failed, cancelled (default: all)
  tree ID                   the call and every call it made (a workflow's
                            children, theirs, ...): state, attempts, outcome
  history ID [--depth N]    a workflow step by step: each call it made, in
                            order, when it was made and ended, its attempts
                            and its outcome; steps that are workflows
                            expanded N levels deep (default: all)
  cancel ID                 stop a pending or running call
  retry ID                  run a failed or cancelled call again
  dispatch FUNCTION [--type MESSAGE] [--input-hex HEX | --input-json JSON]
           [--endpoint URL] [--idempotency-key K] [--expiration-ms N]
                            hand a call to the scheduler; prints its ID.
                            --input-json needs the message's .proto or a
                            descriptor set; --type then defaults to the
                            request message of FUNCTION's method

Stateful functions (dispatchd --statefun-module; see docs/stateful.md):
  send TYPE ID (--string S | --int N | --long N | --bool true|false |
                --double X | --typename T --value-hex HEX) [--idempotency-key K]
                            queue a message to entity ID of function TYPE
                            (namespace/name); prints its message ID
  entity TYPE ID [--limit N]
                            the entity's state (built-in types decoded, and
                            messages with --proto/--descriptor-set), its
                            backlog and its pending delayed messages
  egress NAME [--after SEQ] [--limit N] [--wait-ms N]
                            an egress's records (namespace/name), in order,
                            decoded as entity's values are
  dead-letters [--after ID] [--limit N]
                            batches given up, with their reasons
  redrive ID                queue a dead letter's message again

  --url      scheduler API (default $DISPATCH_API_URL, else http://127.0.0.1:4450)
  --api-key  bearer key (default $DISPATCH_API_KEY)
  --json     print protobuf JSON instead of text
  --proto    a .proto file declaring calls' inputs and outputs, e.g. the one
             dispatch-gen emits (repeatable; default $DISPATCH_PROTO, files
             separated by ':'); imports are found in -I/--proto-path DIR
             (repeatable; default $DISPATCH_PROTO_PATH) and the file's own
             directory, google/protobuf/*.proto always
  --descriptor-set  a FileDescriptorSet (protoc --include_imports
             --descriptor_set_out); repeatable; default $DISPATCH_DESCRIPTOR_SET
             With either, inputs and outputs show as JSON beside their bytes.
Exit status: 0 ok, 1 the scheduler refused or failed, 2 bad usage.
)";

// What to check when `url` did not answer as a dispatchd: nothing there
// (connection refused, a name that does not resolve), or a server that does
// not serve the scheduler's API at all. Empty otherwise.
std::string what_to_check(const dispatch::Error& e, const std::string& url) {
  const std::string& m = e.message();
  if (e.code() == dispatch::Code::unavailable &&
      (m.find("cannot connect to ") != std::string::npos || m.find("cannot resolve ") != std::string::npos)) {
    return " (is dispatchd running at " + url + "? give its address with --url or DISPATCH_API_URL)";
  }
  if (e.code() == dispatch::Code::unimplemented &&
      (m.find("/dispatch.scheduler.v1.AdminService/") != std::string::npos ||
       m.find("/dispatch.sdk.v1.DispatchService/") != std::string::npos)) {
    return " (is " + url + " a dispatchd? the server there does not serve the scheduler's API)";
  }
  return "";
}

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "dispatchctl: %s\n(see dispatchctl --help)\n", message.c_str());
  std::exit(2);
}

// m as protobuf JSON, without a final newline; exits when it cannot be.
std::string to_json(const google::protobuf::Message& m, bool pretty) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = pretty;
  o.always_print_primitive_fields = true;
  const auto status = google::protobuf::util::MessageToJsonString(m, &out, o);
  if (!status.ok()) {
    std::fprintf(stderr, "dispatchctl: cannot print the scheduler's %s as JSON: %s\n",
                 m.GetDescriptor()->full_name().c_str(), std::string(status.message()).c_str());
    std::exit(1);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// `json`, one object as to_json() makes it, with `fields`
// (",\"name\":value"...) added before its closing brace.
std::string with_fields(std::string json, const std::string& fields) {
  if (fields.empty()) return json;
  const std::size_t close = json.rfind('}');
  const std::size_t last = close == 0 ? 0 : json.find_last_not_of(" \n", close - 1);
  json.insert(last == std::string::npos ? close : last + 1, fields);
  return json;
}

// A call's input or output as JSON when the .proto files or descriptor sets
// given declare its type; nullopt without any, as before they existed.
std::optional<std::string> decoded(const dispatchctl::MessageTypes& types, const std::string& type_url,
                                   const std::string& bytes) {
  if (!types.any() || type_url.empty()) return std::nullopt;
  return types.to_json(type_url, bytes);
}

// For --json: the call's input and output decoded, beside their bytes
// (which stay, so that scripts reading them keep working).
std::string decoded_fields(const dispatchctl::MessageTypes& types, const admin::CallInfo& c, bool pretty) {
  const std::string sep = pretty ? ",\n \"" : ",\"";
  const std::string colon = pretty ? "\": " : "\":";
  std::string out;
  if (auto in = decoded(types, c.input_type_url(), c.input_value())) out += sep + "decodedInput" + colon + *in;
  if (auto res = decoded(types, c.output_type_url(), c.output_value())) out += sep + "decodedOutput" + colon + *res;
  return out;
}

// A CallInfo as JSON with its decoded input and output.
std::string call_json(const dispatchctl::MessageTypes& types, const admin::CallInfo& c, bool pretty) {
  return with_fields(to_json(c, pretty), decoded_fields(types, c, pretty));
}

// A StateFun value (state, a queued or delayed message, an egress record)
// for text: a built-in decoded (io.statefun.types/int: 3); a message of a
// .proto or descriptor set given (type.googleapis.com/<package>.<Message>,
// our state wrapper messages too) as compact protobuf JSON; else its size.
std::string shown_value(const dispatchctl::MessageTypes& types, const std::string& type_name,
                        const std::string& bytes) {
  if (auto text = dispatch::stateful::describe_builtin(type_name, bytes)) return *text;
  if (auto json = decoded(types, type_name, bytes)) return *json;
  return "(" + std::to_string(bytes.size()) + " bytes)";
}

// For text: the call's input and output as JSON, a line each, under the
// line that shows the call.
void print_decoded(const dispatchctl::MessageTypes& types, const admin::CallInfo& c, const std::string& indent) {
  if (auto in = decoded(types, c.input_type_url(), c.input_value())) {
    std::printf("%sinput   %s\n", indent.c_str(), in->c_str());
  }
  if (auto res = decoded(types, c.output_type_url(), c.output_value())) {
    std::printf("%soutput  %s\n", indent.c_str(), res->c_str());
  }
}

// Prints m as protobuf JSON, ending with one newline (whether the library
// ends its output with one differs between protobuf versions' printers).
void print_json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.always_print_primitive_fields = true;
  const auto status = google::protobuf::util::MessageToJsonString(m, &out, o);
  if (!status.ok()) {
    std::fprintf(stderr, "dispatchctl: cannot print the scheduler's %s as JSON: %s\n",
                 m.GetDescriptor()->full_name().c_str(), std::string(status.message()).c_str());
    std::exit(1);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  std::printf("%s\n", out.c_str());
}

// The options each command takes after its name (--name value).
const std::map<std::string, std::set<std::string>>& command_options() {
  static const std::map<std::string, std::set<std::string>> options = {
      {"status", {"--wait-ms"}},
      {"list", {"--limit", "--after"}},
      {"tree", {}},
      {"history", {"--depth"}},
      {"cancel", {}},
      {"retry", {}},
      {"dispatch", {"--type", "--input-hex", "--input-json", "--endpoint", "--idempotency-key", "--expiration-ms"}},
      {"send", {"--string", "--int", "--long", "--bool", "--double", "--typename", "--value-hex",
                "--idempotency-key"}},
      {"entity", {"--limit"}},
      {"egress", {"--after", "--limit", "--wait-ms"}},
      {"dead-letters", {"--after", "--limit"}},
      {"redrive", {}},
  };
  return options;
}

std::string format_time(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "-";
  std::time_t t = static_cast<std::time_t>(ts.seconds());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", ts.nanos() / 1000000);
  return std::string(buf) + ms;
}

std::string state_text(admin::CallState s) {
  auto name = dispatch::scheduler::state_name(static_cast<dispatch::scheduler::CallState>(s));
  return std::string(name);
}

void print_call(const dispatchctl::MessageTypes& types, const admin::CallInfo& c) {
  std::printf("id           %s\n", c.id().c_str());
  std::printf("function     %s\n", c.function().c_str());
  std::printf("endpoint     %s\n", c.endpoint().c_str());
  if (auto in = decoded(types, c.input_type_url(), c.input_value())) {
    std::printf("input        %s %s\n", c.input_type_url().c_str(), in->c_str());
  }
  std::printf("state        %s\n", state_text(c.state()).c_str());
  std::printf("attempts     %u\n", c.attempts());
  if (c.restarts() != 0) std::printf("restarts     %u\n", c.restarts());
  if (c.status() != 0) std::printf("status       %s\n", c.status_name().c_str());
  if (!c.error_message().empty() || !c.error_type().empty()) {
    std::printf("error        %s: %s\n", c.error_type().c_str(), c.error_message().c_str());
  }
  if (auto res = decoded(types, c.output_type_url(), c.output_value())) {
    std::printf("output       %s %s\n", c.output_type_url().c_str(), res->c_str());
  } else if (!c.output_type_url().empty()) {
    std::printf("output       %s (%zu bytes)\n", c.output_type_url().c_str(), c.output_value().size());
  }
  if (!c.idempotency_key().empty()) std::printf("idempotency  %s\n", c.idempotency_key().c_str());
  if (!c.tenant().empty()) std::printf("tenant       %s\n", c.tenant().c_str());
  if (!c.parent_id().empty()) {
    std::printf("parent       %s (correlation ID %llu)\n", c.parent_id().c_str(),
                static_cast<unsigned long long>(c.correlation_id()));
  }
  if (!c.root_id().empty() && c.root_id() != c.id()) std::printf("root         %s\n", c.root_id().c_str());
  if (c.state() == admin::CALL_STATE_SUSPENDED) {
    std::printf("waiting for  %u calls (%u results ready)\n", c.outstanding_calls(), c.ready_results());
  }
  std::printf("created      %s\n", format_time(c.created_time()).c_str());
  std::printf("updated      %s\n", format_time(c.updated_time()).c_str());
  if (c.has_next_attempt_time()) std::printf("next attempt %s\n", format_time(c.next_attempt_time()).c_str());
  if (c.has_expiration_time()) std::printf("expires      %s\n", format_time(c.expiration_time()).c_str());
}

// Milliseconds from `from` to `to`.
int64_t ms_between(const google::protobuf::Timestamp& from, const google::protobuf::Timestamp& to) {
  return (to.seconds() - from.seconds()) * 1000 + (to.nanos() - from.nanos()) / 1000000;
}

// "+1.234 s" after `start`, or "-" for an unset time.
std::string offset_text(const google::protobuf::Timestamp& start, const google::protobuf::Timestamp& at) {
  if (at.seconds() == 0 && at.nanos() == 0) return "-";
  const int64_t ms = ms_between(start, at);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%lld.%03lld s", ms < 0 ? "-" : "+", static_cast<long long>(std::llabs(ms) / 1000),
                static_cast<long long>(std::llabs(ms) % 1000));
  return buf;
}

bool has_ended(admin::CallState s) {
  return s == admin::CALL_STATE_COMPLETED || s == admin::CALL_STATE_FAILED || s == admin::CALL_STATE_CANCELLED;
}

// A call's outcome in a few words: its result's type and size, its error,
// or what it waits for.
std::string outcome_text(const admin::CallInfo& c, const google::protobuf::Timestamp& start) {
  std::string text = state_text(c.state());
  switch (c.state()) {
    case admin::CALL_STATE_COMPLETED:
      if (!c.output_type_url().empty()) {
        const std::string& url = c.output_type_url();
        text += ": " + url.substr(url.rfind('/') + 1) + " (" + std::to_string(c.output_value().size()) + " bytes)";
      }
      break;
    case admin::CALL_STATE_FAILED:
    case admin::CALL_STATE_CANCELLED:
      if (c.status() != 0 && c.state() == admin::CALL_STATE_FAILED) text += " " + c.status_name();
      if (!c.error_type().empty() || !c.error_message().empty()) {
        text += ": " + c.error_type() + ": " + c.error_message();
      }
      break;
    case admin::CALL_STATE_PENDING:
      if (c.has_next_attempt_time()) text += ", due " + offset_text(start, c.next_attempt_time());
      if (c.status() != 0) text += " (last: " + c.status_name() + ")";
      break;
    case admin::CALL_STATE_SUSPENDED:
      text += ", waiting for " + std::to_string(c.outstanding_calls()) + " calls";
      break;
    default:
      break;
  }
  return text;
}

bool from_hex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

uint32_t number(const std::string& flag, const std::string& value) {
  char* end = nullptr;
  unsigned long v = std::strtoul(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v > 0xffffffffUL) {
    usage_error(flag + " needs a non-negative number, got '" + value + "'");
  }
  return static_cast<uint32_t>(v);
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  if (const char* env = std::getenv("DISPATCH_API_URL")) url = env;
  if (url.empty()) url = "http://127.0.0.1:4450";
  // DISPATCH_API_KEY, and DISPATCH_SIGNING_KEY (a malformed key is bad usage).
  auto env_options = dispatch::HttpClientOptions::try_from_env();
  if (!env_options.ok()) usage_error(env_options.error().message());
  dispatch::HttpClientOptions http = std::move(*env_options);
  bool json = false;
  std::vector<std::string> args;
  // The message types, from the environment unless given here.
  auto split_env = [](const char* name) {
    std::vector<std::string> items;
    const char* value = std::getenv(name);
    for (std::string rest = value ? value : ""; !rest.empty();) {
      const std::size_t colon = rest.find(':');
      if (colon != 0) items.push_back(rest.substr(0, colon));
      rest = colon == std::string::npos ? "" : rest.substr(colon + 1);
    }
    return items;
  };
  std::vector<std::string> proto_files, proto_paths, descriptor_sets;
  bool protos_given = false, paths_given = false, sets_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--url" || a == "--api-key") {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      (a == "--url" ? url : http.api_key) = argv[++i];
    } else if (a == "--proto" || a == "--proto-path" || a == "-I" || a == "--descriptor-set") {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      const std::string value = argv[++i];
      if (a == "--proto") {
        protos_given = true;
        proto_files.push_back(value);
      } else if (a == "--descriptor-set") {
        sets_given = true;
        descriptor_sets.push_back(value);
      } else {
        paths_given = true;
        proto_paths.push_back(value);
      }
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) usage_error("no command");
  if (!protos_given) proto_files = split_env("DISPATCH_PROTO");
  if (!paths_given) proto_paths = split_env("DISPATCH_PROTO_PATH");
  if (!sets_given) descriptor_sets = split_env("DISPATCH_DESCRIPTOR_SET");
  // Read before the command runs: a .proto that does not parse is bad usage,
  // told before anything is dispatched.
  dispatchctl::MessageTypes types;
  for (const auto& dir : proto_paths) types.add_proto_path(dir);
  for (const auto& file : proto_files) {
    auto added = types.add_proto_file(file);
    if (!added.ok()) usage_error("--proto: " + added.error().message());
  }
  for (const auto& file : descriptor_sets) {
    auto added = types.add_descriptor_set(file);
    if (!added.ok()) usage_error("--descriptor-set: " + added.error().message());
  }
  const std::string command = args[0];
  // Options after the command: --name value.
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) == 0) {
      if (i + 1 >= args.size()) usage_error(args[i] + " needs a value");
      flags[args[i]] = args[i + 1];
      ++i;
    } else {
      positional.push_back(args[i]);
    }
  }
  // Every option is checked before the command runs: a mistyped option must
  // not leave a call cancelled or dispatched behind a usage error.
  const auto allowed = command_options().find(command);
  if (allowed == command_options().end()) usage_error("unknown command '" + command + "'");
  for (const auto& [name, value] : flags) {
    if (allowed->second.count(name) == 0) usage_error("unknown option '" + name + "' for " + command);
  }
  auto flag = [&](const char* name) -> std::string {
    auto it = flags.find(name);
    if (it == flags.end()) return "";
    std::string v = it->second;
    flags.erase(it);
    return v;
  };

  http.default_timeout = std::chrono::milliseconds(90'000);
  auto client = dispatch::HttpClient::create(url, http);
  if (!client.ok()) usage_error("--url: " + client.error().message());
  auto call = [&](const char* method, const google::protobuf::Message& req,
                  google::protobuf::Message* res) {
    auto reply = (*client)->call(std::string("/dispatch.scheduler.v1.AdminService/") + method,
                                 req.SerializeAsString(), {});
    if (!reply.ok()) {
      std::fprintf(stderr, "dispatchctl: %s: %s%s\n", std::string(dispatch::code_name(reply.error().code())).c_str(),
                   reply.error().message().c_str(), what_to_check(reply.error(), url).c_str());
      std::exit(1);
    }
    if (!res->ParseFromString(*reply)) {
      std::fprintf(stderr, "dispatchctl: the scheduler's reply is not a %s\n",
                   res->GetDescriptor()->full_name().c_str());
      std::exit(1);
    }
  };
  // The stateful-functions routes.
  auto call_statefun = [&](const char* service_method, const google::protobuf::Message& req,
                           google::protobuf::Message* res) {
    auto reply = (*client)->call(std::string("/dispatch.statefun.v1.") + service_method, req.SerializeAsString(), {});
    if (!reply.ok()) {
      std::fprintf(stderr, "dispatchctl: %s: %s%s\n", std::string(dispatch::code_name(reply.error().code())).c_str(),
                   reply.error().message().c_str(), what_to_check(reply.error(), url).c_str());
      std::exit(1);
    }
    if (!res->ParseFromString(*reply)) {
      std::fprintf(stderr, "dispatchctl: the reply is not a %s\n", res->GetDescriptor()->full_name().c_str());
      std::exit(1);
    }
  };
  auto need_id = [&]() -> std::string {
    if (positional.size() != 1) usage_error(command + " needs exactly one call ID");
    return positional[0];
  };
  auto print = [&](const admin::CallInfo& info) {
    if (json) {
      std::printf("%s\n", call_json(types, info, true).c_str());
    } else {
      print_call(types, info);
    }
  };

  if (command == "status") {
    admin::GetRequest req;
    req.set_id(need_id());
    std::string wait = flag("--wait-ms");
    if (!wait.empty()) req.set_wait_ms(number("--wait-ms", wait));
    admin::CallInfo info;
    call("Get", req, &info);
    print(info);
  } else if (command == "list") {
    admin::ListRequest req;
    if (positional.size() > 1) usage_error("list takes at most one state");
    if (positional.size() == 1) {
      auto state = dispatch::scheduler::state_from_name(positional[0]);
      if (!state) usage_error("unknown state '" + positional[0] +
                                "' (pending, running, suspended, completed, failed, cancelled)");
      req.set_state(static_cast<admin::CallState>(*state));
    }
    std::string limit = flag("--limit");
    if (!limit.empty()) req.set_limit(number("--limit", limit));
    req.set_after_id(flag("--after"));
    admin::ListResponse res;
    call("List", req, &res);
    if (json && !types.any()) {
      print_json(res);
    } else if (json) {
      // protobuf's layout, with each call's decoded input and output.
      std::string out = "{\n \"calls\": [";
      for (int i = 0; i < res.calls_size(); ++i) {
        out += (i == 0 ? "\n  " : ",\n  ") + call_json(types, res.calls(i), false);
      }
      std::printf("%s%s]\n}\n", out.c_str(), res.calls_size() == 0 ? "" : "\n ");
    } else {
      std::printf("%-32s  %-9s  %8s  %-24s  %s\n", "ID", "STATE", "ATTEMPTS", "STATUS", "FUNCTION");
      for (const auto& c : res.calls()) {
        std::printf("%-32s  %-9s  %8u  %-24s  %s\n", c.id().c_str(), state_text(c.state()).c_str(),
                    c.attempts(), c.status() ? c.status_name().c_str() : "-", c.function().c_str());
        print_decoded(types, c, "    ");
      }
    }
  } else if (command == "tree") {
    // The call, then its children depth first, each page of children
    // fetched as the walk reaches it.
    admin::GetRequest get;
    get.set_id(need_id());
    admin::CallInfo root;
    call("Get", get, &root);
    std::string out;
    if (!json) {
      std::printf("%-32s  %-9s  %8s  %-24s  %s\n", "ID", "STATE", "ATTEMPTS", "STATUS", "FUNCTION");
    }
    std::function<void(const admin::CallInfo&, int)> walk = [&](const admin::CallInfo& c, int depth) {
      if (json) {
        out += "{\"call\":" + call_json(types, c, false) + ",\"children\":[";
      } else {
        std::string outcome;
        if (!c.error_type().empty() || !c.error_message().empty()) {
          outcome = "  " + c.error_type() + ": " + c.error_message();
        } else if (c.state() == admin::CALL_STATE_PENDING && c.has_next_attempt_time()) {
          outcome = "  due " + format_time(c.next_attempt_time());
        }
        std::printf("%-32s  %-9s  %8u  %-24s  %s%s%s\n", c.id().c_str(), state_text(c.state()).c_str(),
                    c.attempts(), c.status() ? c.status_name().c_str() : "-",
                    std::string(static_cast<std::size_t>(depth) * 2, ' ').c_str(), c.function().c_str(),
                    outcome.c_str());
        print_decoded(types, c, std::string(4 + static_cast<std::size_t>(depth) * 2, ' '));
      }
      admin::ListRequest req;
      req.set_parent_id(c.id());
      req.set_limit(1000);
      bool first = true;
      while (true) {
        admin::ListResponse page;
        call("List", req, &page);
        for (const auto& child : page.calls()) {
          if (json && !first) out += ",";
          first = false;
          walk(child, depth + 1);
        }
        if (page.calls_size() < static_cast<int>(req.limit())) break;
        req.set_after_id(page.calls(page.calls_size() - 1).id());
      }
      if (json) out += "]}";
    };
    walk(root, 0);
    if (json) std::printf("%s\n", out.c_str());
  } else if (command == "history") {
    // What the store keeps of a workflow's run: the calls it made (its
    // children, in the order it made them) with their times, attempts and
    // outcomes; a step that made calls itself (a child workflow) is
    // expanded under it, --depth levels deep. Times are from the top
    // workflow's creation.
    admin::GetRequest get;
    get.set_id(need_id());
    const std::string depth_flag = flag("--depth");
    const uint32_t max_depth = depth_flag.empty() ? UINT32_MAX : number("--depth", depth_flag);
    admin::CallInfo workflow;
    call("Get", get, &workflow);
    auto steps_of = [&](const std::string& id) {
      std::vector<admin::CallInfo> steps;
      admin::ListRequest req;
      req.set_parent_id(id);
      req.set_limit(1000);
      while (true) {
        admin::ListResponse page;
        call("List", req, &page);
        steps.insert(steps.end(), page.calls().begin(), page.calls().end());
        if (page.calls_size() < static_cast<int>(req.limit())) break;
        req.set_after_id(page.calls(page.calls_size() - 1).id());
      }
      return steps;
    };
    const auto& start = workflow.created_time();
    const std::vector<admin::CallInfo> steps = steps_of(workflow.id());
    if (json) {
      // {"step": n, "madeMs", "endedMs", "call": CallInfo[, "steps": [...]]}
      std::function<std::string(const std::vector<admin::CallInfo>&, uint32_t)> steps_json =
          [&](const std::vector<admin::CallInfo>& list, uint32_t depth) {
            std::string out = "[";
            for (std::size_t i = 0; i < list.size(); ++i) {
              const admin::CallInfo& c = list[i];
              if (i > 0) out += ",";
              out += "{\"step\":" + std::to_string(i + 1) + ",\"madeMs\":" +
                     std::to_string(ms_between(start, c.created_time())) + ",\"endedMs\":" +
                     (has_ended(c.state()) ? std::to_string(ms_between(start, c.updated_time()))
                                           : std::string("null")) +
                     ",\"call\":" + call_json(types, c, false);
              if (depth < max_depth) {
                const auto children = steps_of(c.id());
                if (!children.empty()) out += ",\"steps\":" + steps_json(children, depth + 1);
              }
              out += "}";
            }
            return out + "]";
          };
      std::printf("{\"workflow\":%s,\"steps\":%s}\n", call_json(types, workflow, false).c_str(),
                  steps_json(steps, 0).c_str());
    } else {
      std::printf("workflow  %s  %s\n", workflow.id().c_str(), workflow.function().c_str());
      if (auto in = decoded(types, workflow.input_type_url(), workflow.input_value())) {
        std::printf("input     %s\n", in->c_str());
      }
      std::printf("started   %s\n", format_time(start).c_str());
      std::printf("outcome   %s%s\n", outcome_text(workflow, start).c_str(),
                  has_ended(workflow.state()) ? (" at " + offset_text(start, workflow.updated_time())).c_str() : "");
      if (auto res = decoded(types, workflow.output_type_url(), workflow.output_value())) {
        std::printf("output    %s\n", res->c_str());
      }
      std::printf("steps     %zu\n", steps.size());
      if (!steps.empty()) {
        std::printf("%4s  %-10s  %-10s  %8s  %-32s  %-24s  %s\n", "STEP", "MADE", "ENDED", "ATTEMPTS", "ID",
                    "CALL", "OUTCOME");
      }
      // A child workflow's steps are numbered under its own ("5.1") and
      // indented under it, as `tree` indents.
      std::function<void(const std::vector<admin::CallInfo>&, const std::string&, uint32_t)> print_steps =
          [&](const std::vector<admin::CallInfo>& list, const std::string& prefix, uint32_t depth) {
            const std::string indent(static_cast<std::size_t>(depth) * 2, ' ');
            for (std::size_t i = 0; i < list.size(); ++i) {
              const admin::CallInfo& c = list[i];
              const std::string label = prefix + std::to_string(i + 1);
              std::printf("%4s  %-10s  %-10s  %8u  %-32s  %-24s  %s\n", label.c_str(),
                          offset_text(start, c.created_time()).c_str(),
                          has_ended(c.state()) ? offset_text(start, c.updated_time()).c_str() : "-", c.attempts(),
                          c.id().c_str(), (indent + c.function()).c_str(), outcome_text(c, start).c_str());
              print_decoded(types, c, "      " + indent);
              if (depth < max_depth) {
                const auto children = steps_of(c.id());
                if (!children.empty()) print_steps(children, label + ".", depth + 1);
              }
            }
          };
      print_steps(steps, "", 0);
    }
  } else if (command == "cancel" || command == "retry") {
    admin::CallInfo info;
    if (command == "cancel") {
      admin::CancelRequest req;
      req.set_id(need_id());
      call("Cancel", req, &info);
    } else {
      admin::RetryRequest req;
      req.set_id(need_id());
      call("Retry", req, &info);
    }
    print(info);
  } else if (command == "dispatch") {
    if (positional.size() != 1) usage_error("dispatch needs exactly one function name");
    std::string type = flag("--type");
    std::string input;
    if (flags.count("--input-json") != 0) {
      if (flags.count("--input-hex") != 0) usage_error("give --input-hex or --input-json, not both");
      if (!types.any()) {
        usage_error("--input-json needs the message's type: give its .proto with --proto, or a descriptor set "
                    "with --descriptor-set");
      }
      if (type.empty()) {
        auto request = types.request_type_of(positional[0]);
        if (!request.ok()) usage_error(request.error().message());
        type = *request;
      }
      auto encoded = types.from_json(type, flag("--input-json"));
      if (!encoded.ok()) usage_error("--input-json: " + encoded.error().message());
      input = std::move(*encoded);
    } else {
      if (type.empty()) usage_error("dispatch needs --type <package.Message> (the request message)");
      if (!from_hex(flag("--input-hex"), &input)) usage_error("--input-hex is not hexadecimal bytes");
    }
    dispatch::DispatchOptions o;
    o.endpoint = flag("--endpoint");
    o.idempotency_key = flag("--idempotency-key");
    std::string exp = flag("--expiration-ms");
    if (!exp.empty()) o.expiration = std::chrono::milliseconds(number("--expiration-ms", exp));
    dispatch::DispatchClient dc(**client, "");
    auto id = dc.dispatch(positional[0], type, input, o);
    if (!id.ok()) {
      std::fprintf(stderr, "dispatchctl: %s%s\n", id.error().what(), what_to_check(id.error(), url).c_str());
      return 1;
    }
    if (json) {
      std::printf("{\n \"dispatchId\": \"%s\"\n}\n", id->c_str());
    } else {
      std::printf("%s\n", id->c_str());
    }
  } else if (command == "send") {
    if (positional.size() != 2) usage_error("send needs a function type (namespace/name) and an entity id");
    namespace st = dispatch::stateful;
    std::string type_name, value;
    int given = 0;
    if (flags.count("--string")) {
      ++given;
      type_name = st::kStringType;
      value = st::encode_string(flag("--string"));
    }
    auto whole = [&](const char* name) -> long long {
      const std::string v = flag(name);
      char* end = nullptr;
      errno = 0;
      const long long n = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || errno != 0) usage_error(std::string(name) + " needs a whole number, got '" + v + "'");
      return n;
    };
    if (flags.count("--int")) {
      ++given;
      const long long n = whole("--int");
      if (n < INT32_MIN || n > INT32_MAX) usage_error("--int is a 32-bit number; use --long");
      type_name = st::kIntType;
      value = st::encode_int(static_cast<int32_t>(n));
    }
    if (flags.count("--long")) {
      ++given;
      type_name = st::kLongType;
      value = st::encode_long(whole("--long"));
    }
    if (flags.count("--bool")) {
      ++given;
      const std::string b = flag("--bool");
      if (b != "true" && b != "false") usage_error("--bool takes true or false, got '" + b + "'");
      type_name = st::kBoolType;
      value = st::encode_bool(b == "true");
    }
    if (flags.count("--double")) {
      ++given;
      const std::string d = flag("--double");
      char* end = nullptr;
      const double x = std::strtod(d.c_str(), &end);
      if (d.empty() || *end != '\0') usage_error("--double needs a number, got '" + d + "'");
      type_name = st::kDoubleType;
      value = st::encode_double(x);
    }
    if (flags.count("--typename") || flags.count("--value-hex")) {
      ++given;
      type_name = flag("--typename");
      if (type_name.empty()) usage_error("--value-hex needs --typename (e.g. type.googleapis.com/pkg.Message)");
      if (!from_hex(flag("--value-hex"), &value)) usage_error("--value-hex is not hexadecimal bytes");
    }
    if (given != 1) usage_error("send needs exactly one value: --string, --int, --long, --bool, --double, or --typename with --value-hex");
    dispatch::statefun::v1::SendRequest req;
    auto* m = req.add_messages();
    m->set_function_type(positional[0]);
    m->set_id(positional[1]);
    m->set_typename_(type_name);
    m->set_value(value);
    m->set_idempotency_key(flag("--idempotency-key"));
    dispatch::statefun::v1::SendResponse res;
    call_statefun("IngressService/Send", req, &res);
    if (json) {
      print_json(res);
    } else {
      std::printf("%llu\n", static_cast<unsigned long long>(res.message_ids(0)));
    }
  } else if (command == "entity") {
    if (positional.size() != 2) usage_error("entity needs a function type (namespace/name) and an entity id");
    dispatch::statefun::v1::GetEntityRequest req;
    req.set_function_type(positional[0]);
    req.set_id(positional[1]);
    const std::string limit = flag("--limit");
    if (!limit.empty()) req.set_limit(number("--limit", limit));
    dispatch::statefun::v1::EntityInfo info;
    call_statefun("StatefunAdminService/GetEntity", req, &info);
    if (json) {
      // The state values the .proto files or descriptor sets given declare,
      // as JSON beside their bytes: "decodedState": {"name": {...}}.
      std::string state;
      for (const auto& v : info.state()) {
        auto value = decoded(types, v.typename_(), v.value());
        if (!value) continue;
        google::protobuf::Value name;
        name.set_string_value(v.name());
        state += (state.empty() ? "" : ", ") + to_json(name, false) + ": " + *value;
      }
      if (state.empty()) {
        print_json(info);
      } else {
        std::printf("%s\n", with_fields(to_json(info, true), ",\n \"decodedState\": {" + state + "}").c_str());
      }
    } else {
      auto shown = [&types](const std::string& type_name, const std::string& bytes) {
        return shown_value(types, type_name, bytes);
      };
      std::printf("entity       %s/%s\n", info.function_type().c_str(), info.id().c_str());
      std::printf("in flight    %s\n", info.in_flight() ? "yes" : "no");
      if (info.attempts() != 0) std::printf("attempts     %u (last error: %s)\n", info.attempts(), info.last_error().c_str());
      std::printf("state        %d values\n", info.state_size());
      for (const auto& v : info.state()) {
        std::printf("  %-20s %s = %s%s%s\n", v.name().c_str(), v.typename_().c_str(), shown(v.typename_(), v.value()).c_str(),
                    v.has_expire_time() ? (v.expired() ? "  (expired " : "  (expires ") : "",
                    v.has_expire_time() ? (format_time(v.expire_time()) + ")").c_str() : "");
      }
      std::printf("backlog      %d messages\n", info.backlog_size());
      for (const auto& q : info.backlog()) {
        std::printf("  %-10llu %s = %s%s%s\n", static_cast<unsigned long long>(q.id()), q.typename_().c_str(),
                    shown(q.typename_(), q.value()).c_str(), q.caller().empty() ? "" : "  from ", q.caller().c_str());
      }
      std::printf("delayed      %d messages\n", info.delayed_size());
      for (const auto& d : info.delayed()) {
        std::printf("  %-10llu due %s  %s = %s%s%s\n", static_cast<unsigned long long>(d.id()),
                    format_time(d.due_time()).c_str(), d.typename_().c_str(), shown(d.typename_(), d.value()).c_str(),
                    d.cancellation_token().empty() ? "" : "  token ", d.cancellation_token().c_str());
      }
    }
  } else if (command == "egress") {
    if (positional.size() != 1) usage_error("egress needs an egress name (namespace/name)");
    dispatch::statefun::v1::ReadEgressRequest req;
    req.set_egress(positional[0]);
    const std::string after = flag("--after"), limit = flag("--limit"), wait = flag("--wait-ms");
    if (!after.empty()) req.set_after_seq(number("--after", after));
    if (!limit.empty()) req.set_limit(number("--limit", limit));
    if (!wait.empty()) req.set_wait_ms(number("--wait-ms", wait));
    dispatch::statefun::v1::ReadEgressResponse res;
    call_statefun("EgressService/Read", req, &res);
    if (json) {
      print_json(res);
    } else {
      for (const auto& r : res.records()) {
        std::printf("%-10llu %s  %s = %s\n", static_cast<unsigned long long>(r.seq()), format_time(r.created_time()).c_str(),
                    r.typename_().c_str(), shown_value(types, r.typename_(), r.value()).c_str());
      }
    }
  } else if (command == "dead-letters") {
    dispatch::statefun::v1::ListDeadLettersRequest req;
    const std::string after = flag("--after"), limit = flag("--limit");
    if (!after.empty()) req.set_after_id(number("--after", after));
    if (!limit.empty()) req.set_limit(number("--limit", limit));
    dispatch::statefun::v1::ListDeadLettersResponse res;
    call_statefun("StatefunAdminService/ListDeadLetters", req, &res);
    if (json) {
      print_json(res);
    } else {
      std::printf("%-8s  %-30s  %8s  %s\n", "ID", "ENTITY", "ATTEMPTS", "REASON");
      for (const auto& d : res.dead_letters()) {
        std::printf("%-8llu  %-30s  %8u  %s\n", static_cast<unsigned long long>(d.id()),
                    (d.function_type() + "/" + d.entity_id()).c_str(), d.attempts(), d.reason().c_str());
      }
    }
  } else if (command == "redrive") {
    if (positional.size() != 1) usage_error("redrive needs a dead letter id");
    dispatch::statefun::v1::RedriveRequest req;
    req.set_id(number("redrive", positional[0]));
    dispatch::statefun::v1::RedriveResponse res;
    call_statefun("StatefunAdminService/Redrive", req, &res);
    if (json) {
      print_json(res);
    } else {
      std::printf("%llu\n", static_cast<unsigned long long>(res.message_id()));
    }
  }
  return 0;
}
