#include "dispatch/core/call_headers.h"

#include <gtest/gtest.h>

#include <iterator>
#include <string>

#include "dispatch/core/in_process.h"
#include "dispatch/core/service.h"

namespace dispatch {
namespace {

using Lines = std::vector<std::pair<std::string, std::string>>;

TEST(RequestHeaders, FindsNamesInAnyCaseAndKeepsRepeatedLinesInOrder) {
  const Lines lines{{":path", "/x"}, {"X-Tenant", "acme"}, {"x-tag", "a"}, {"X-TAG", "b"}, {"empty", ""}};
  const RequestHeaderList headers(lines);
  EXPECT_EQ(headers.get("x-tenant"), "acme");
  EXPECT_EQ(headers.get("X-TENANT"), "acme");
  EXPECT_EQ(headers.get("x-tag"), "a");
  EXPECT_EQ(headers.values("x-tag"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(headers.get("empty"), "");
  EXPECT_EQ(headers.get("missing"), std::nullopt);
  EXPECT_TRUE(headers.values("missing").empty());
  // Pseudo-headers are the transport's; names come lower-case.
  EXPECT_EQ(headers.get(":path"), std::nullopt);
  EXPECT_EQ(headers.all(), (Lines{{"x-tenant", "acme"}, {"x-tag", "a"}, {"x-tag", "b"}, {"empty", ""}}));
}

TEST(ResponseHeaders, TakesMetadataAFunctionMaySend) {
  ResponseHeaders h;
  ASSERT_TRUE(h.add("x-request-cost", "12").ok());
  ASSERT_TRUE(h.add("cache-control", "max-age=60").ok());
  ASSERT_TRUE(h.add("x-trace.id_2", "").ok());
  ASSERT_TRUE(h.add("x-blob-bin", "AAEC/w==").ok());
  ASSERT_TRUE(h.add("x-request-cost", "13").ok());  // repeated lines are kept
  EXPECT_EQ(h.lines(), (Lines{{"x-request-cost", "12"},
                              {"cache-control", "max-age=60"},
                              {"x-trace.id_2", ""},
                              {"x-blob-bin", "AAEC/w=="},
                              {"x-request-cost", "13"}}));
}

TEST(ResponseHeaders, RefusesWhatTheProtocolsCannotCarryOrOwnAndSaysWhy) {
  ResponseHeaders h;
  struct Case {
    const char* name;
    std::string value;
    const char* says;
  };
  const Case cases[] = {
      {"", "v", "needs a name"},
      {"X-Upper", "v", "only lower-case letters"},
      {"x y", "v", "only lower-case letters"},
      {"x:y", "v", "only lower-case letters"},
      {"content-type", "text/plain", "written by the protocol"},
      {"content-length", "1", "written by the protocol"},
      {"grpc-status", "0", "written by the protocol"},
      {"connect-timeout-ms", "1", "written by the protocol"},
      {"access-control-allow-origin", "*", "written by CORS"},
      {"ce-type", "com.example", "written by CloudEvents"},
      {"transfer-encoding", "chunked", "written by HTTP"},
      {"connection", "close", "written by HTTP"},
      {"x-a", "line\r\nx-injected: 1", "outside printable ASCII"},
      {"x-a", std::string("nul\0x", 5), "outside printable ASCII"},
      {"x-a", "caf\xc3\xa9", "outside printable ASCII"},
      {"x-a", " padded", "starts or ends with a space"},
      {"x-a-bin", "not base64!", "must be base64"},
  };
  for (const Case& c : cases) {
    auto r = h.add(c.name, c.value);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.error().code(), Code::invalid_argument) << c.name;
    EXPECT_NE(std::string(r.error().what()).find(c.says), std::string::npos) << c.name << ": " << r.error().what();
  }
  EXPECT_TRUE(h.empty());
}

TEST(ResponseHeaders, StopsAtTheSizeLimitWithoutAddingTheLineThatCrossesIt) {
  ResponseHeaders h;
  const std::string value(1000, 'v');
  std::size_t added = 0;
  while (h.add("x-big", value).ok()) ++added;
  EXPECT_EQ(added, ResponseHeaders::kMaxBytes / (5 + value.size()));
  auto r = h.add("x-big", value);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::resource_exhausted);
  EXPECT_EQ(h.lines().size(), added);
  EXPECT_TRUE(h.add("x-small", "1").ok());  // what still fits goes in
}

// A function reading its request's headers and adding to its answer's.
Result<std::string> uses_headers(const MethodCall&) {
  std::string seen = request_header("X-Tenant").value_or("none");
  auto added = add_response_header("x-seen", seen);
  return seen + (added.ok() ? "/added" : "/" + std::string(added.error().what()));
}

const Method kMethods[] = {{"headers", "/t.HService/headers", "t.Req", "t.Resp", &uses_headers}};
const Service kService{"t", "HService", kMethods, std::size(kMethods), {}};

TEST(CallHeaders, AnInProcessCallShowsItsOptionsHeadersAndChecksWhatTheFunctionAdds) {
  DispatchTable table{&kService};
  InProcessClient client(table);
  CallOptions options;
  options.headers = {{"x-tenant", "acme"}};
  Lines answer;
  options.response_headers = &answer;
  EXPECT_EQ(client.call("/t.HService/headers", "", options).value(), "acme/added");
  EXPECT_EQ(answer, (Lines{{"x-seen", "acme"}}));
  EXPECT_EQ(client.call("/t.HService/headers", "", {}).value(), "none/added");
}

TEST(CallHeaders, OutsideACallThereAreNoHeadersAndNothingToAddTo) {
  EXPECT_EQ(request_header("x-tenant"), std::nullopt);
  auto r = add_response_header("x-seen", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::failed_precondition);
  // A context without headers (a durable call's Run) says the same.
  const CallContext durable;
  DispatchTable table{&kService};
  EXPECT_EQ(table.invoke(kMethods[0], "", durable).value().substr(0, 5), "none/");
}

}  // namespace
}  // namespace dispatch
