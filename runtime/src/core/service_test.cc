#include "dispatch/core/service.h"

#include <gtest/gtest.h>

#include <iterator>
#include <stdexcept>

#include "dispatch/core/in_process.h"

namespace dispatch {
namespace {

// Hand-written handlers standing in for generated ones: echo, and throwers.
Result<std::string> echo(const MethodCall& call) { return std::string(call.request); }
Result<std::string> throws_invalid(const MethodCall&) { throw std::invalid_argument("qty < 0"); }
Result<std::string> throws_runtime(const MethodCall&) { throw std::runtime_error("boom"); }
Result<std::string> throws_error(const MethodCall&) { throw Error(Code::not_found, "no such"); }
Result<std::string> returns_error(const MethodCall&) { return Error(Code::invalid_argument, "bad bytes"); }
// What a plain function sees (this_call()) is what its handler was given.
Result<std::string> reads_context(const MethodCall& call) {
  const CallContext& c = this_call();
  EXPECT_EQ(&c, &call.context);
  return c.dispatch_id + "/" + std::to_string(c.attempt) + (c.deadline ? "/deadline" : "");
}
// Which table and service a handler is given.
Result<std::string> names_its_service(const MethodCall& call) {
  return std::string(call.service.package) + "." + call.service.name + " in a table of " +
         std::to_string(call.table.services().size());
}

const Method kMethods[] = {
    {"echo", "/t.TService/echo", "t.EchoRequest", "t.EchoResponse", &echo},
    {"invalid", "/t.TService/invalid", "t.InvalidRequest", "t.InvalidResponse", &throws_invalid},
    {"runtime", "/t.TService/runtime", "t.RuntimeRequest", "t.RuntimeResponse", &throws_runtime},
    {"error", "/t.TService/error", "t.ErrorRequest", "t.ErrorResponse", &throws_error},
    {"context", "/t.TService/context", "t.ContextRequest", "t.ContextResponse", &reads_context},
    {"returns", "/t.TService/returns", "t.ReturnsRequest", "t.ReturnsResponse", &returns_error},
};
const Service kService{"t", "TService", kMethods, std::size(kMethods), {}};
const Method kOther[] = {
    {"echo", "/u.UService/echo", "u.EchoRequest", "u.EchoResponse", &echo},
    {"names", "/u.UService/names", "u.NamesRequest", "u.NamesResponse", &names_its_service},
};
const Service kOtherService{"u", "UService", kOther, std::size(kOther), {}};

TEST(DispatchTable, FindsByPathAndName) {
  DispatchTable table{&kService};
  ASSERT_NE(table.find("/t.TService/echo"), nullptr);
  EXPECT_EQ(table.find("/t.TService/nope"), nullptr);
  EXPECT_EQ(table.find(""), nullptr);
  EXPECT_EQ(table.find_function("echo"), &kMethods[0]);
  EXPECT_EQ(table.find_function("t.echo"), &kMethods[0]);
}

TEST(DispatchTable, AmbiguousShortNameNeedsPackage) {
  DispatchTable table{&kService, &kOtherService};
  EXPECT_EQ(table.find_function("echo"), nullptr);
  EXPECT_EQ(table.find_function("t.echo"), &kMethods[0]);
  EXPECT_EQ(table.find_function("u.echo"), &kOther[0]);
}

TEST(DispatchTable, APathServedByAnotherServiceIsRejected) {
  const Service impostor{"t", "TService", kOther, 1, {}};  // a second object
  const Method same_path[] = {{"echo", "/t.TService/echo", "t.EchoRequest", "t.EchoResponse", &echo}};
  const Service clash{"v", "VService", same_path, 1, {}};
  DispatchTable table;
  ASSERT_TRUE(table.add(kService).ok());
  auto again = table.add(clash);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), Code::already_exists);
  EXPECT_NE(again.error().message().find("/t.TService/echo"), std::string::npos);
  EXPECT_EQ(table.services().size(), 1u);
  EXPECT_TRUE(table.add(impostor).ok());  // its path /u.UService/echo is free
}

TEST(DispatchTable, TheSameServiceAddedTwiceIsOneRoute) {
  DispatchTable table;
  ASSERT_TRUE(table.add(kService).ok());
  ASSERT_TRUE(table.add(kService).ok());
  EXPECT_EQ(table.services().size(), 1u);
  EXPECT_EQ(table.find_function("echo"), &kMethods[0]);  // still unambiguous
}

// A generated service brings the built-in route it needs (the Run route);
// several of them, or the route also added by hand, make one route.
const Method kBuiltIn[] = {{"Run", "/b.BuiltIn/Run", "b.RunRequest", "b.RunResponse", &echo}};
const Service kBuiltInService{"b", "BuiltIn", kBuiltIn, 1, {}};
const Service kNeedsBuiltIn{"t", "TService", kMethods, std::size(kMethods), {}, &kBuiltInService};
const Service kAlsoNeedsBuiltIn{"u", "UService", kOther, std::size(kOther), {}, &kBuiltInService};

TEST(DispatchTable, AServiceBringsItsCompanionOnce) {
  DispatchTable table{&kNeedsBuiltIn, &kAlsoNeedsBuiltIn, &kBuiltInService};
  EXPECT_EQ(table.services().size(), 3u);
  EXPECT_EQ(table.find("/b.BuiltIn/Run"), &kBuiltIn[0]);
  DispatchTable alone{&kNeedsBuiltIn};
  EXPECT_EQ(alone.find("/b.BuiltIn/Run"), &kBuiltIn[0]);
}

// A method with a Run entry is run through it, given the route's service.
Result<std::string> runs_itself(const MethodCall& call) {
  return std::string(call.service.name) + ":" + std::string(call.request) + ":" + this_call().root_dispatch_id;
}
Result<std::string> run_throws(const MethodCall&) { throw Error(Code::aborted, "no"); }
const Method kRunnable[] = {
    {"wf", "/w.WService/wf", "w.WfRequest", "w.WfResponse", &echo, nullptr, &runs_itself},
    {"bad", "/w.WService/bad", "w.BadRequest", "w.BadResponse", &echo, nullptr, &run_throws},
};
const Service kRunnableService{"w", "WService", kRunnable, std::size(kRunnable), {}};

TEST(DispatchTable, InvokeRunCallsTheRunEntryWithTheRoutesService) {
  DispatchTable table{&kRunnableService, &kService};
  CallContext context;
  context.root_dispatch_id = "root";
  EXPECT_EQ(*table.invoke_run(kRunnable[0], kBuiltInService, "req", context), "BuiltIn:req:root");
  EXPECT_EQ(table.invoke_run(kRunnable[1], kBuiltInService, "", context).error().code(), Code::aborted);
  // A method without a Run entry, or of another table, is refused.
  EXPECT_EQ(table.invoke_run(kMethods[0], kBuiltInService, "", context).error().code(), Code::internal);
  EXPECT_EQ(table.invoke_run(kOther[0], kBuiltInService, "", context).error().code(), Code::internal);
}

TEST(DispatchTable, InvokeMapsExceptions) {
  DispatchTable table{&kService};
  EXPECT_EQ(*table.invoke(*table.find("/t.TService/echo"), "abc"), "abc");
  EXPECT_EQ(table.invoke(*table.find("/t.TService/invalid"), "").error().code(),
            Code::invalid_argument);
  auto rt = table.invoke(*table.find("/t.TService/runtime"), "");
  EXPECT_EQ(rt.error().code(), Code::internal);
  EXPECT_EQ(rt.error().message(), "boom");
  EXPECT_EQ(table.invoke(*table.find("/t.TService/error"), "").error().code(), Code::not_found);
}

TEST(DispatchTable, AnErrorAHandlerReturnsIsTheCallsError) {
  DispatchTable table{&kService};
  auto r = table.invoke(*table.find("/t.TService/returns"), "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::invalid_argument);
  EXPECT_EQ(r.error().message(), "bad bytes");
}

TEST(DispatchTable, AHandlerIsGivenItsServiceAndTheTableRunningIt) {
  DispatchTable table{&kService, &kOtherService};
  EXPECT_EQ(*table.invoke(*table.find("/u.UService/names"), ""), "u.UService in a table of 2");
}

TEST(DispatchTable, AMethodOfAnotherTableIsRefused) {
  DispatchTable table{&kService};
  auto r = table.invoke(kOther[0], "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::internal);
  EXPECT_NE(r.error().message().find("/u.UService/echo"), std::string::npos);
}

TEST(DispatchTable, ContextIsVisibleOnlyDuringTheCall) {
  DispatchTable table{&kService};
  CallContext context;
  context.dispatch_id = "d1";
  context.attempt = 3;
  EXPECT_EQ(*table.invoke(*table.find("/t.TService/context"), "", context), "d1/3");
  EXPECT_TRUE(this_call().dispatch_id.empty());
}

TEST(InProcessClient, RunsThroughTable) {
  DispatchTable table{&kService};
  InProcessClient client(table);
  EXPECT_EQ(*client.call("/t.TService/echo", "xyz", {}), "xyz");
  auto missing = client.call("/t.TService/missing", "", {});
  EXPECT_EQ(missing.error().code(), Code::unimplemented);
  CallOptions with_deadline;
  with_deadline.timeout = std::chrono::milliseconds(1000);
  EXPECT_EQ(*client.call("/t.TService/context", "", with_deadline), "/0/deadline");
  bool called = false;
  client.call_async("/t.TService/echo", "q", {}, [&](Result<std::string> r) {
    called = true;
    EXPECT_EQ(*r, "q");
  });
  EXPECT_TRUE(called);
}

}  // namespace
}  // namespace dispatch
