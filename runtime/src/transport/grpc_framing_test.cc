#include "transport/grpc_framing.h"

#include <gtest/gtest.h>

#include <random>

namespace dispatch::grpc {
namespace {

TEST(GrpcContentType, NamesTheVariantsAndCodecs) {
  auto proto = [](Variant v) { return ContentType{v, Codec::proto}; };
  auto json = [](Variant v) { return ContentType{v, Codec::json}; };
  EXPECT_EQ(parse_content_type("application/grpc"), proto(Variant::grpc));
  EXPECT_EQ(parse_content_type("application/grpc+proto"), proto(Variant::grpc));
  EXPECT_EQ(parse_content_type("Application/GRPC; charset=utf-8"), proto(Variant::grpc));
  EXPECT_EQ(parse_content_type("application/grpc-web"), proto(Variant::web));
  EXPECT_EQ(parse_content_type("application/grpc-web+proto"), proto(Variant::web));
  EXPECT_EQ(parse_content_type("application/grpc-web-text"), proto(Variant::web_text));
  EXPECT_EQ(parse_content_type("application/grpc-web-text+proto"), proto(Variant::web_text));
  EXPECT_EQ(parse_content_type("application/grpc+json"), json(Variant::grpc));
  EXPECT_EQ(parse_content_type("application/grpc-web+JSON; charset=utf-8"), json(Variant::web));
  EXPECT_EQ(parse_content_type("application/grpc-web-text+json"), json(Variant::web_text));
  EXPECT_FALSE(parse_content_type("application/grpc+cbor"));
  EXPECT_FALSE(parse_content_type("application/grpc+jsonx"));
  EXPECT_FALSE(parse_content_type("application/grpc+protobuf"));
  EXPECT_FALSE(parse_content_type("application/grpcx"));
  EXPECT_FALSE(parse_content_type("application/proto"));
  EXPECT_TRUE(looks_like_grpc("application/grpc+cbor"));
  EXPECT_FALSE(looks_like_grpc("application/json"));
  EXPECT_EQ(content_type_of(Variant::grpc), "application/grpc");
  EXPECT_EQ(content_type_of(Variant::grpc, Codec::json), "application/grpc+json");
  EXPECT_EQ(content_type_of(Variant::web), "application/grpc-web+proto");
  EXPECT_EQ(content_type_of(Variant::web_text, Codec::json), "application/grpc-web-text+json");
}

TEST(GrpcTimeout, ParsesEveryUnit) {
  using namespace std::chrono;
  EXPECT_EQ(*parse_timeout("1H"), hours(1));
  EXPECT_EQ(*parse_timeout("2M"), minutes(2));
  EXPECT_EQ(*parse_timeout("3S"), seconds(3));
  EXPECT_EQ(*parse_timeout("100m"), milliseconds(100));
  EXPECT_EQ(*parse_timeout("5u"), microseconds(5));
  EXPECT_EQ(*parse_timeout("99999999n"), nanoseconds(99999999));
  // Eight digits of hours do not fit in int64 nanoseconds: capped at 100 years.
  EXPECT_EQ(*parse_timeout("99999999H"), hours(24 * 365 * 100));
  EXPECT_EQ(*parse_timeout("99999999M"), hours(24 * 365 * 100));
  EXPECT_EQ(*parse_timeout("99999999S"), seconds(99999999));
  for (auto bad : {"", "1", "S", "123456789S", "1s", "-1S", "1.5S", "1 S", "1SS"}) {
    auto r = parse_timeout(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), Code::invalid_argument);
    EXPECT_NE(r.error().message().find("grpc-timeout"), std::string::npos);
  }
}

TEST(GrpcTimeout, FormatsWithoutShortening) {
  using namespace std::chrono;
  EXPECT_EQ(format_timeout(milliseconds(250)), "250000u");
  EXPECT_EQ(format_timeout(seconds(300)), "300000m");
  EXPECT_EQ(format_timeout(hours(100000)), "6000000M");
  EXPECT_EQ(format_timeout(nanoseconds(0)), "1n");
  for (auto d : {nanoseconds(123456789123), nanoseconds(7), nanoseconds(999999999999999)}) {
    EXPECT_GE(*parse_timeout(format_timeout(d)), d);
  }
}

TEST(GrpcEncoding, AcceptsIdentityAndGzipOnly) {
  EXPECT_EQ(*compression_from_header(std::nullopt), Compression::identity);
  EXPECT_EQ(*compression_from_header("gzip"), Compression::gzip);
  EXPECT_EQ(*compression_from_header("identity"), Compression::identity);
  auto snappy = compression_from_header("snappy");
  ASSERT_FALSE(snappy.ok());
  EXPECT_EQ(snappy.error().code(), Code::unimplemented);
  EXPECT_TRUE(accepts_gzip("identity, deflate,gzip"));
  EXPECT_FALSE(accepts_gzip("identity,deflate"));
  EXPECT_FALSE(accepts_gzip(std::nullopt));
}

TEST(Gzip, RoundTripsAndRefusesBombsAndGarbage) {
  const std::string text(100000, 'a');
  const std::string packed = gzip_compress(text);
  EXPECT_LT(packed.size(), 1000u);
  EXPECT_EQ(*gzip_decompress(packed, text.size()), text);
  auto bomb = gzip_decompress(packed, 1000);
  ASSERT_FALSE(bomb.ok());
  EXPECT_EQ(bomb.error().code(), Code::resource_exhausted);
  auto cut = gzip_decompress(packed.substr(0, packed.size() / 2), text.size());
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().code(), Code::internal);
  EXPECT_FALSE(gzip_decompress("not gzip at all", 100).ok());
  EXPECT_FALSE(gzip_decompress(packed + "x", text.size()).ok());  // trailing bytes
}

TEST(MessageReader, TakesMessagesAsTheyArriveByteByByte) {
  const std::string stream = frame_message("hello") + frame_message("") + frame_message(std::string(300, 'z'));
  MessageReader reader(1000);
  std::vector<std::string> got;
  for (char c : stream) {
    reader.append(std::string_view(&c, 1));
    while (true) {
      auto next = reader.next(Compression::identity);
      ASSERT_TRUE(next.ok());
      if (!*next) break;
      got.push_back(**next);
    }
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "hello");
  EXPECT_EQ(got[1], "");
  EXPECT_EQ(got[2], std::string(300, 'z'));
  EXPECT_EQ(reader.pending(), 0u);
}

TEST(MessageReader, RefusesBadFramesWithTheirCodes) {
  {
    MessageReader r(10);
    r.append(std::string("\0\0\0\0\x0b", 5));  // declares 11 > 10: refused before the bytes arrive
    auto n = r.next(Compression::identity);
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.error().code(), Code::resource_exhausted);
  }
  {
    MessageReader r(100);
    r.append(frame_message("x", true));
    auto n = r.next(Compression::identity);
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.error().code(), Code::internal);
    EXPECT_NE(n.error().message().find("compressed flag"), std::string::npos);
  }
  {
    MessageReader r(100);
    std::string frame = frame_message("x");
    frame[0] = 2;
    r.append(frame);
    EXPECT_EQ(r.next(Compression::identity).error().code(), Code::internal);
  }
  {
    MessageReader r(100);
    r.append(frame_message("x") .substr(0, 4));
    EXPECT_FALSE(*r.next(Compression::identity));
    EXPECT_EQ(r.pending(), 4u);  // cut short
  }
  {
    MessageReader r(100000);
    r.append(frame_message(gzip_compress(std::string(500, 'q')), true));
    EXPECT_EQ(**r.next(Compression::gzip), std::string(500, 'q'));
  }
}

TEST(SingleMessage, ViewsAnUncompressedBodyWithoutCopying) {
  const std::string body = frame_message("hello");
  std::string inflated;
  auto m = single_message(body, Compression::identity, 100, inflated);
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(*m, "hello");
  EXPECT_EQ(m->data(), body.data() + 5);  // a view of the body itself
  EXPECT_TRUE(inflated.empty());
  auto empty = single_message(frame_message(""), Compression::identity, 100, inflated);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(SingleMessage, InflatesACompressedBody) {
  const std::string body = frame_message(gzip_compress(std::string(500, 'q')), true);
  std::string inflated;
  auto m = single_message(body, Compression::gzip, 100000, inflated);
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(*m, std::string(500, 'q'));
  EXPECT_EQ(m->data(), inflated.data());
}

TEST(SingleMessage, RefusesWhatIsNotExactlyOneMessage) {
  std::string inflated;
  auto error_of = [&](std::string_view body, std::size_t max = 100, Compression c = Compression::identity) {
    auto m = single_message(body, c, max, inflated);
    EXPECT_FALSE(m.ok()) << "accepted " << body.size() << " bytes";
    return m.ok() ? Error(Code::unknown, "accepted") : m.error();
  };
  EXPECT_EQ(error_of("").message(), "a unary call carries one request message; none came");
  EXPECT_EQ(error_of(frame_message("x").substr(0, 4)).message(), "the request ended inside its message");
  EXPECT_EQ(error_of(frame_message("xyz").substr(0, 7)).message(), "the request ended inside its message");
  EXPECT_EQ(error_of(frame_message("x") + "ab").message(), "a unary call carries one request message; more came");
  EXPECT_EQ(error_of(frame_message("x") + frame_message("y")).message(),
            "a unary call carries one request message; more came");
  EXPECT_EQ(error_of(std::string("\0\0\0\0\x0b", 5) + std::string(11, 'z'), 10).code(), Code::resource_exhausted);
  EXPECT_NE(error_of(frame_message("x", true)).message().find("compressed flag"), std::string::npos);
  std::string reserved = frame_message("x");
  reserved[0] = 2;
  EXPECT_EQ(error_of(reserved).code(), Code::internal);
  EXPECT_EQ(error_of(frame_message("not gzip", true), 100, Compression::gzip).code(), Code::internal);
}

TEST(GrpcMessage, PercentEncodesAsTheSpecSays) {
  EXPECT_EQ(percent_encode("plain text"), "plain text");
  EXPECT_EQ(percent_encode("100% \xe2\x82\xac\n"), "100%25 %E2%82%AC%0A");
  EXPECT_EQ(percent_decode("100%25 %E2%82%AC%0a"), "100% \xe2\x82\xac\n");
  EXPECT_EQ(percent_decode("bad %zz and %4"), "bad %zz and %4");
}

TEST(GrpcStatus, DetailsRoundTripThroughGoogleRpcStatus) {
  Error error(Code::failed_precondition, "no stock", {{"google.rpc.RetryInfo", std::string("\x0a\x02\x08\x05", 4)}});
  const std::string details = status_details(error);
  ASSERT_FALSE(details.empty());
  Error back = error_from_status(Code::failed_precondition, "no stock", details);
  ASSERT_EQ(back.details().size(), 1u);
  EXPECT_EQ(back.details()[0], error.details()[0]);
  EXPECT_TRUE(status_details(Error(Code::internal, "x")).empty());
  EXPECT_TRUE(error_from_status(Code::internal, "x", std::string_view("\xff\xff", 2)).details().empty());
  auto trailers = status_trailers(&error);
  ASSERT_EQ(trailers.size(), 3u);
  EXPECT_EQ(trailers[0], (std::pair<std::string, std::string>{"grpc-status", "9"}));
  EXPECT_EQ(*decode_binary_header(trailers[2].second), details);
  EXPECT_EQ(status_trailers(nullptr).size(), 1u);
}

TEST(GrpcWeb, TrailerFramesAndTextBodies) {
  const std::string frame = web_trailer_frame({{"grpc-status", "0"}, {"grpc-message", "fine"}});
  EXPECT_EQ(static_cast<unsigned char>(frame[0]), 0x80);
  auto parsed = parse_web_trailers(std::string_view(frame).substr(5));
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[1].second, "fine");
  EXPECT_FALSE(parse_web_trailers("no colon here\r\n").ok());
  // Two chunks each padded, as a client encoding frame by frame sends them.
  const std::string a = frame_message("ab"), b = frame_message("c");
  EXPECT_EQ(*decode_web_text(encode_web_text(a) + encode_web_text(b)), a + b);
  EXPECT_EQ(*decode_web_text(encode_web_text(a + b)), a + b);
  EXPECT_FALSE(decode_web_text("not base64!").ok());
  EXPECT_FALSE(decode_web_text("QUJD\nREVG").ok());
}

}  // namespace
}  // namespace dispatch::grpc
