// Generated stateful functions across real processes: dispatchd
// --statefun-module routes greeter/* and counters/* (a module.yaml as
// StateFun users write it) to the server dispatch-gen and
// dispatch_add_server() made; messages go in through the generated send()
// stubs (dispatchd's ingress), and the entity API shows what the functions
// kept: the greeter's count and name per entity, and the counter the
// greeter messages summing every greeting. dispatchctl given the .proto
// dispatch-gen emitted shows an inventory's state of message types and of
// state wrapper messages as JSON, and its egress records.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "child_process.h"
#include "dispatch/statefun/v1/runtime.pb.h"
#include "dispatch/stateful/value_types.h"
#include "dispatch/transport/http_client.h"
#include "stateful/api.dispatch.h"

namespace {

using namespace std::chrono_literals;
using durable_test::free_port;
using durable_test::port_open;
using durable_test::spawn;
namespace api = ::dispatch::statefun::v1;
namespace st = ::dispatch::stateful;

class GeneratedStatefulE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "stateful_e2e_" + std::to_string(::getpid()) + "/";
    ASSERT_EQ(std::system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str()), 0);
    api_port_ = free_port();
    ep_port_ = free_port();
    const std::string ep = "http://127.0.0.1:" + std::to_string(ep_port_) + "/statefun";
    std::ofstream(dir_ + "module.yaml") << "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: greeter/*\n"
                                        << "  urlPathTemplate: " << ep << "\n---\n"
                                        << "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: counters/*\n"
                                        << "  urlPathTemplate: " << ep << "\n";
    server_ = spawn({STATEFUL_SERVER}, dir_ + "server.log",
                    {{"DISPATCH_ENDPOINT_ADDR", "127.0.0.1:" + std::to_string(ep_port_)}});
    dispatchd_ = spawn({DISPATCHD, "--db", dir_ + "d.db", "--listen", "127.0.0.1:" + std::to_string(api_port_),
                        "--api-key", "k1", "--statefun-module", dir_ + "module.yaml"},
                       dir_ + "dispatchd.log");
    for (int i = 0; i < 500 && !(port_open(api_port_) && port_open(ep_port_)); ++i) {
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(port_open(api_port_) && port_open(ep_port_)) << "see the logs in " << dir_;
    dispatch::HttpClientOptions options;
    options.api_key = "k1";
    client_ = std::make_unique<dispatch::HttpClient>("http://127.0.0.1:" + std::to_string(api_port_), options);
  }
  void TearDown() override {
    client_.reset();
    for (pid_t pid : {dispatchd_, server_}) {
      ::kill(pid, SIGTERM);
      int status = 0;
      ::waitpid(pid, &status, 0);
    }
    if (!HasFailure()) std::system(("rm -rf " + dir_).c_str());
  }

  // The entity's state values by name, as dispatchd keeps them.
  std::map<std::string, api::StateValue> entity(const std::string& type, const std::string& id, bool* idle) {
    api::GetEntityRequest req;
    req.set_function_type(type);
    req.set_id(id);
    auto reply = client_->call("/dispatch.statefun.v1.StatefunAdminService/GetEntity", req.SerializeAsString(), {});
    std::map<std::string, api::StateValue> values;
    *idle = false;
    if (!reply.ok()) return values;
    api::EntityInfo info;
    EXPECT_TRUE(info.ParseFromString(*reply));
    for (const auto& v : info.state()) values[v.name()] = v;
    *idle = !info.in_flight() && info.backlog_size() == 0;
    return values;
  }
  // Polls until `done` holds of the entity's state (or 20 s pass).
  template <typename Done>
  std::map<std::string, api::StateValue> await_entity(const std::string& type, const std::string& id, Done done) {
    std::map<std::string, api::StateValue> values;
    for (int i = 0; i < 1000; ++i) {
      bool idle = false;
      values = entity(type, id, &idle);
      if (idle && done(values)) break;
      std::this_thread::sleep_for(20ms);
    }
    return values;
  }

  std::string dir_;
  uint16_t api_port_ = 0, ep_port_ = 0;
  pid_t dispatchd_ = -1, server_ = -1;
  std::unique_ptr<dispatch::HttpClient> client_;
};

TEST_F(GeneratedStatefulE2E, MessagesSentWithTheGeneratedStubAreCountedByTheGeneratedFunctions) {
  constexpr int kGreetings = 5;
  for (int i = 0; i < kGreetings; ++i) {
    auto id = greeter::remote::greet.send(*client_, "alice", greeter::GreetRequest{"alice-" + std::to_string(i)});
    ASSERT_TRUE(id.ok()) << id.error().what();
  }
  // A key sent twice is queued once.
  st::SendOptions keyed;
  keyed.idempotency_key = "bob-1";
  auto first = greeter::remote::greet.send(*client_, "bob", greeter::GreetRequest{"bob"}, keyed);
  auto again = greeter::remote::greet.send(*client_, "bob", greeter::GreetRequest{"bob"}, keyed);
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(*first, *again);
  // And one to the counter directly, typed by its stub.
  ASSERT_TRUE(greeter::remote::tally.send(*client_, "alice", std::int64_t{100}).ok());

  auto alice = await_entity("greeter/greet", "alice", [](const auto& v) {
    auto it = v.find("count");
    return it != v.end() && st::decode_int(it->second.value()).value() == kGreetings;
  });
  ASSERT_EQ(alice.count("count"), 1u) << "see the logs in " << dir_;
  EXPECT_EQ(alice["count"].typename_(), st::kIntType);
  EXPECT_EQ(st::decode_int(alice["count"].value()).value(), kGreetings);
  EXPECT_EQ(st::decode_string(alice["last_name"].value()).value(), "alice-4");
  EXPECT_TRUE(alice["last_name"].has_expire_time());  // [[dispatch::expire_after_write("10m")]]
  EXPECT_EQ(st::decode_int(alice["budget"].value()).value(), 5 - kGreetings);

  auto bob = await_entity("greeter/greet", "bob", [](const auto& v) { return v.count("count") != 0; });
  EXPECT_EQ(st::decode_int(bob["count"].value()).value(), 1);

  // Every greeting told the counter of its entity; alice's got 100 more.
  auto sums = await_entity("counters/tally", "alice", [](const auto& v) {
    auto it = v.find("sum");
    return it != v.end() && st::decode_long(it->second.value()).value() == 100 + kGreetings;
  });
  EXPECT_EQ(st::decode_long(sums["sum"].value()).value(), 100 + kGreetings) << "see the logs in " << dir_;
  EXPECT_EQ(sums["sum"].typename_(), st::kLongType);
}

using durable_test::Output;
using durable_test::run;
// The line of `text` that contains `needle`, or "".
std::string line_with(const std::string& text, const std::string& needle) {
  const std::size_t at = text.find(needle);
  if (at == std::string::npos) return "";
  const std::size_t begin = text.rfind('\n', at);
  const std::size_t end = text.find('\n', at);
  return text.substr(begin == std::string::npos ? 0 : begin + 1, end == std::string::npos ? end : end - begin - 1);
}

TEST_F(GeneratedStatefulE2E, DispatchctlShowsMessageAndWrapperStateAsJsonWithTheEmittedProto) {
  ASSERT_TRUE(greeter::remote::restock.send(*client_, "store-9", greeter::Restock{"apple", 5}).ok());
  ASSERT_TRUE(greeter::remote::restock.send(*client_, "store-9", greeter::Restock{"pear", 200}).ok());
  auto values = await_entity("greeter/restock", "store-9", [](const std::map<std::string, api::StateValue>& v) {
    auto it = v.find("total");
    if (it == v.end()) return false;
    auto total = st::decode_long(it->second.value());
    return total.ok() && *total == 205;
  });
  ASSERT_EQ(values.count("stock"), 1u) << "see the logs in " << dir_;
  const std::string ctl = "env -u DISPATCH_PROTO -u DISPATCH_PROTO_PATH -u DISPATCH_DESCRIPTOR_SET " +
                          std::string(DISPATCHCTL) + " --url http://127.0.0.1:" + std::to_string(api_port_) +
                          " --api-key k1 ";

  // Without a .proto: built-ins decoded, messages by size.
  Output plain = run(ctl + "entity greeter/restock store-9");
  ASSERT_EQ(plain.status, 0) << plain.out;
  EXPECT_NE(plain.out.find("io.statefun.types/long = 205"), std::string::npos) << plain.out;
  EXPECT_NE(line_with(plain.out, "greeter.Inventory_stock = ").find(" bytes)"), std::string::npos) << plain.out;

  // With it: each message and state wrapper message as JSON.
  Output typed = run(ctl + "--proto " + STATEFUL_PROTO + " entity greeter/restock store-9");
  ASSERT_EQ(typed.status, 0) << typed.out;
  EXPECT_NE(typed.out.find("io.statefun.types/long = 205"), std::string::npos) << typed.out;
  EXPECT_NE(typed.out.find("type.googleapis.com/greeter.Receipt = "
                           "{\"item\":\"pear\",\"stock\":\"200\",\"shelf\":{\"aisle\":\"front\"}}"),
            std::string::npos)
      << typed.out;
  const std::string stock = line_with(typed.out, "greeter.Inventory_stock = {\"value\":{");
  EXPECT_NE(stock.find("\"apple\":\"5\""), std::string::npos) << typed.out;
  EXPECT_NE(stock.find("\"pear\":\"200\""), std::string::npos) << typed.out;
  EXPECT_NE(typed.out.find("greeter.Inventory_grade = {\"value\":\"GRADE_FRESH\"}"), std::string::npos) << typed.out;
  EXPECT_NE(typed.out.find("greeter.Inventory_items = {\"value\":[\"apple\",\"pear\"]}"), std::string::npos)
      << typed.out;
  EXPECT_NE(typed.out.find("greeter.Inventory_shelves = {\"value\":[{\"aisle\":\"aisle-pear\"}]}"),
            std::string::npos)
      << typed.out;
  EXPECT_NE(typed.out.find("greeter.Inventory_low = {\"value\":-3}"), std::string::npos) << typed.out;

  // --json: the entity as before, with the decoded values beside their bytes.
  Output json = run(ctl + "--proto " + STATEFUL_PROTO + " --json entity greeter/restock store-9");
  ASSERT_EQ(json.status, 0) << json.out;
  EXPECT_NE(json.out.find("\"decodedState\": {"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"restocks\": {\"value\":2}"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"functionType\": \"greeter/restock\""), std::string::npos) << json.out;

  // The egress records, decoded the same way.
  Output egress = run(ctl + "--proto " + STATEFUL_PROTO + " egress inventory/receipts");
  ASSERT_EQ(egress.status, 0) << egress.out;
  EXPECT_NE(egress.out.find("type.googleapis.com/greeter.Receipt = "
                            "{\"item\":\"apple\",\"stock\":\"5\",\"shelf\":{\"aisle\":\"front\"}}"),
            std::string::npos)
      << egress.out;
}

TEST_F(GeneratedStatefulE2E, ASendDispatchdRefusesComesBackAsItsError) {
  auto empty = greeter::remote::greet.send(*client_, "", greeter::GreetRequest{"x"});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code(), dispatch::Code::invalid_argument);
  EXPECT_NE(empty.error().message().find("the entity id is empty"), std::string::npos) << empty.error().message();
}

}  // namespace
