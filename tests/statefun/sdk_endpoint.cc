// A stateful function served with the SDK's endpoint route
// (dispatch::stateful::StatefulFunctions on dispatch::Server), for the
// protocol test client (python_client.py). greeter/greet declares "seen"
// (an int) and "last" (a string that expires 60 s after it is written);
// each message (a string name) adds one to seen, keeps the name in last,
// replies "hello <name>" to its caller (when there is one, and it is not
// itself) and emits the
// name to the egress greeter/log. "later" also sends itself "again" in
// 100 ms with the token "tok"; "cancel" cancels it; "forget" deletes last;
// "boom" throws.
// Usage: sdk_endpoint --port-file PATH
#include <cstdio>
#include <stdexcept>
#include <string>

#include "dispatch/stateful/endpoint.h"
#include "dispatch/stateful/value_types.h"
#include "dispatch/transport/server.h"

namespace st = ::dispatch::stateful;

int main(int argc, char** argv) {
  std::string port_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--port-file") port_file = argv[i + 1];
  }
  st::StatefulFunctions fns;
  auto added = fns.add({"greeter/greet",
                        {{"seen", std::string(st::kIntType)},
                         {"last", std::string(st::kStringType), st::Expire::after_write, std::chrono::seconds(60)}},
                        [](st::Invocation& ctx) {
                          const std::string name = st::decode_string(ctx.argument().value).value();
                          if (name == "boom") throw std::runtime_error("boom");
                          const st::TypedValue* seen = ctx.state("seen").value();
                          const int32_t n = seen ? st::decode_int(seen->value).value() : 0;
                          (void)ctx.set_state("seen", st::encode_int(n + 1));
                          if (name == "forget") {
                            (void)ctx.clear_state("last");
                          } else {
                            (void)ctx.set_state("last", st::encode_string(name));
                          }
                          if (ctx.caller() && !(*ctx.caller() == ctx.self())) {
                            (void)ctx.reply({std::string(st::kStringType), st::encode_string("hello " + name)});
                          }
                          ctx.egress("greeter/log", {std::string(st::kStringType), st::encode_string(name)});
                          if (name == "later") {
                            ctx.send_after(std::chrono::milliseconds(100), ctx.self(),
                                           {std::string(st::kStringType), st::encode_string("again")}, "tok");
                          } else if (name == "cancel") {
                            ctx.cancel_delayed("tok");
                          }
                        }});
  if (!added.ok()) {
    std::fprintf(stderr, "sdk_endpoint: %s\n", added.error().what());
    return 1;
  }
  dispatch::DispatchTable table;
  if (auto r = fns.add_to(table, "/statefun"); !r.ok()) {
    std::fprintf(stderr, "sdk_endpoint: %s\n", r.error().what());
    return 1;
  }
  dispatch::ServerOptions options;
  options.port = 0;
  options.logger = dispatch::Logger::from_env();
  dispatch::Server server(table, options);
  server.handle_signals();
  if (auto started = server.start(); !started.ok()) {
    std::fprintf(stderr, "sdk_endpoint: %s\n", started.error().what());
    return 1;
  }
  const std::string tmp = port_file + ".tmp";
  if (FILE* f = std::fopen(tmp.c_str(), "w")) {
    std::fprintf(f, "%u\n", static_cast<unsigned>(server.port()));
    std::fclose(f);
    std::rename(tmp.c_str(), port_file.c_str());
  }
  return server.run().ok() ? 0 : 1;
}
