// The endpoint route's registration rules and its state rules: refusals at
// add(), an undeclared name refused inside a function, reply without a
// caller refused, and the route on a DispatchTable answering at its path.
#include "dispatch/stateful/endpoint.h"

#include <gtest/gtest.h>

#include "dispatch/stateful/value_types.h"
#include "io/statefun/sdk/reqreply/request_reply.pb.h"

namespace dispatch::stateful {
namespace {

namespace pb = ::io::statefun::sdk::reqreply;

StatefulFunction noop(std::string type, std::vector<ValueSpec> specs = {}) {
  return {std::move(type), std::move(specs), [](Invocation&) {}};
}

TEST(StatefulFunctions, RefusesBadRegistrations) {
  StatefulFunctions fns;
  auto refused = [&](StatefulFunction f, const char* says) {
    auto r = fns.add(std::move(f));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Code::invalid_argument);
    EXPECT_NE(r.error().message().find(says), std::string::npos) << r.error().message();
  };
  refused(noop("nons"), "not 'namespace/name'");
  refused(noop("a/b", {{"", "t"}}), "needs a name and a typename");
  refused(noop("a/b", {{"x", "t"}, {"x", "t"}}), "declared twice");
  refused(noop("a/b", {{"x", "t", Expire::after_write, std::chrono::milliseconds(0)}}), "must be positive");
  refused({"a/b", {}, nullptr}, "no function to run");
  ASSERT_TRUE(fns.add(noop("a/b")).ok());
  refused(noop("a/b"), "registered twice");
  DispatchTable table;
  EXPECT_FALSE(fns.add_to(table, "statefun").ok());
}

TEST(StatefulFunctions, StateIsDeclaredOrRefusedAndAReplyNeedsACaller) {
  StatefulFunctions fns;
  std::vector<std::string> problems;
  ASSERT_TRUE(fns.add({"a/b", {{"n", std::string(kIntType)}}, [&](Invocation& ctx) {
                         auto undeclared = ctx.state("ghost");
                         if (!undeclared.ok()) problems.push_back(undeclared.error().message());
                         auto set = ctx.set_state("ghost", "x");
                         if (!set.ok()) problems.push_back(set.error().message());
                         auto reply = ctx.reply({std::string(kStringType), "x"});
                         if (!reply.ok()) problems.push_back(reply.error().message());
                         EXPECT_EQ(ctx.state("n").value(), nullptr);
                       }}).ok());
  DispatchTable table;
  ASSERT_TRUE(fns.add_to(table, "/sf").ok());
  const Method* route = table.find("/sf");
  ASSERT_NE(route, nullptr);
  pb::ToFunction req;
  req.mutable_invocation()->mutable_target()->set_namespace_("a");
  req.mutable_invocation()->mutable_target()->set_type("b");
  req.mutable_invocation()->mutable_target()->set_id("1");
  req.mutable_invocation()->add_state()->set_state_name("n");
  req.mutable_invocation()->add_invocations()->mutable_argument()->set_typename_(std::string(kStringType));
  auto res = table.invoke(*route, req.SerializeAsString());
  ASSERT_TRUE(res.ok()) << res.error().what();
  pb::FromFunction from;
  ASSERT_TRUE(from.ParseFromString(*res));
  EXPECT_TRUE(from.has_invocation_result());
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_NE(problems[0].find("'ghost' is not declared by a/b"), std::string::npos);
  EXPECT_NE(problems[2].find("no caller"), std::string::npos);
}

}  // namespace
}  // namespace dispatch::stateful
