#include "dispatch/core/trace_context.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace dispatch {
namespace {

constexpr std::string_view kExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceParent, ParsesTheRecommendationsExample) {
  auto parsed = parse_traceparent(kExample);
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(parsed->sampled());
  EXPECT_EQ(parsed->trace_id[0], 0x4b);
  EXPECT_EQ(parsed->trace_id[15], 0x36);
  EXPECT_EQ(parsed->parent_id[0], 0x00);
  EXPECT_EQ(parsed->parent_id[7], 0xb7);
}

TEST(TraceParent, RefusesMalformedValues) {
  for (std::string_view bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",     // short
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",   // version 00 is exactly 55
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // uppercase
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    // not hex
           "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version not hex
           "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",   // later version: no dash after flags
       }) {
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
  }
}

TEST(TraceParent, ReadsALaterVersionAsVersion00Allows) {
  auto parsed = parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future-holds");
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(parsed->sampled());
  parsed->span_id = random_span_id();
  // Sent on as version 00, with only the flag version 00 defines.
  EXPECT_EQ(parsed->traceparent().substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  EXPECT_EQ(parsed->traceparent().substr(52), "-01");
}

TEST(TraceState, KeepsValidMembersInOrder) {
  EXPECT_EQ(parse_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  EXPECT_EQ(parse_tracestate(" a=1 ,, b@tenant=x y ,\t"), "a=1,b@tenant=x y");
  EXPECT_EQ(parse_tracestate(""), "");
}

TEST(TraceState, DropsTheWholeHeaderWhenAMemberIsMalformed) {
  for (std::string_view bad : {"a", "A=1", "a=1,a=2", "a=", "a=x=y", "1a=1", "a=\x01", "a@=1", "a@b@c=1"}) {
    EXPECT_FALSE(parse_tracestate(bad)) << bad;
  }
  std::string many;
  for (int i = 0; i < 33; ++i) many += "k" + std::to_string(i) + "=v,";
  EXPECT_FALSE(parse_tracestate(many));
}

TEST(TraceState, TrimsTo512CharactersLongMembersFirst) {
  std::string header = "a=" + std::string(200, 'x');  // a long member, first
  for (int i = 0; i < 20; ++i) header += ",k" + std::to_string(i) + "=" + std::string(20, 'v');
  auto trimmed = parse_tracestate(header);
  ASSERT_TRUE(trimmed);
  EXPECT_LE(trimmed->size(), 512u);
  EXPECT_EQ(trimmed->find("a="), std::string::npos);  // the long one went first
  EXPECT_EQ(trimmed->substr(0, 3), "k0=");
}

TEST(CallTrace, ContinuesAValidTraceWithANewSpan) {
  auto trace = start_call_trace(kExample, "rojo=1");
  EXPECT_TRUE(trace.valid());
  EXPECT_EQ(trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(trace.tracestate, "rojo=1");
  const std::string sent = trace.traceparent();
  EXPECT_EQ(sent.size(), 55u);
  EXPECT_NE(sent.substr(36, 16), "00f067aa0ba902b7");  // our span, not the caller's
  ASSERT_TRUE(parse_traceparent(sent));
  EXPECT_EQ(parse_traceparent(sent)->parent_id, trace.span_id);
}

TEST(CallTrace, RestartsOnAMalformedTraceparentAndDropsItsTracestate) {
  auto trace = start_call_trace("00-zz", "rojo=1");
  EXPECT_TRUE(trace.valid());
  EXPECT_NE(trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_TRUE(trace.tracestate.empty());
  EXPECT_FALSE(trace.sampled());
  auto fresh = start_call_trace(std::nullopt, std::nullopt);
  EXPECT_TRUE(fresh.valid());
  EXPECT_NE(fresh.trace_id, trace.trace_id);
}

TEST(CallTrace, IdsDoNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(start_call_trace(std::nullopt, std::nullopt).traceparent());
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_TRUE(TraceContext{}.traceparent().empty());
}

}  // namespace
}  // namespace dispatch
