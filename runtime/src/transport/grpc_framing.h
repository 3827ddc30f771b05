// The gRPC protocol's pure parts, shared by the server (HTTP/2 and gRPC-Web)
// and the client: content types, grpc-timeout, message framing
// (Length-Prefixed-Message: a flag byte, a 4-byte big-endian length, the
// message), gzip, the percent-encoded grpc-message, google.rpc.Status in
// grpc-status-details-bin, and gRPC-Web's trailer frame and text encoding.
// Follows PROTOCOL-HTTP2.md and PROTOCOL-WEB.md of the gRPC repository. No I/O
// and no Boost, so all of it is testable and fuzzable without a socket.
//
// Not for: HTTP/2 framing (nghttp2, http2_session.h) or routing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dispatch/core/error.h"
#include "dispatch/core/result.h"

namespace dispatch::grpc {

enum class Variant {
  grpc,      // application/grpc[+proto] over HTTP/2
  web,       // application/grpc-web[+proto] (HTTP/1.1 or 2)
  web_text,  // application/grpc-web-text[+proto]: base64 bodies
};

// How the messages are encoded: the content type's "+proto" (or none) or
// "+json" (protobuf's JSON mapping, as connect-go's and grpc-go's JSON
// codecs write it).
enum class Codec { proto, json };
struct ContentType {
  Variant variant = Variant::grpc;
  Codec codec = Codec::proto;
  bool operator==(const ContentType&) const = default;
};
// The variant and codec a Content-Type names ("application/grpc-web+json";
// parameters after ";" ignored, case-insensitive), nullopt for another
// content type or another codec ("+cbor"): those are answered 415.
std::optional<ContentType> parse_content_type(std::string_view content_type) noexcept;
// True when `content_type` starts with "application/grpc" (any variant or
// codec): the request is a gRPC one, to be refused in gRPC terms.
bool looks_like_grpc(std::string_view content_type) noexcept;
// The Content-Type of an answer: "application/grpc" for gRPC in protobuf
// (what every gRPC implementation sends), the codec named otherwise.
std::string_view content_type_of(Variant variant, Codec codec = Codec::proto) noexcept;

// grpc-timeout: 1 to 8 ASCII digits and a unit (H, M, S, m, u, n).
// Anything else is invalid_argument naming the header and the value.
Result<std::chrono::nanoseconds> parse_timeout(std::string_view value);
// The shortest grpc-timeout spelling that does not shorten `timeout`
// (rounded up to the unit), for clients; at least 1n.
std::string format_timeout(std::chrono::nanoseconds timeout);

enum class Compression { identity, gzip };
// grpc-encoding (absent: identity). Another name is unimplemented, with
// the encodings this side accepts.
Result<Compression> compression_from_header(std::optional<std::string_view> grpc_encoding);
// Whether a grpc-accept-encoding list names gzip.
bool accepts_gzip(std::optional<std::string_view> grpc_accept_encoding) noexcept;
inline constexpr std::string_view kAcceptEncoding = "identity,gzip";

// gzip (RFC 1952) by zlib. Decompression stops with resource_exhausted
// past `max_bytes`, and a stream that is not gzip is internal (a gRPC
// message that does not decompress).
std::string gzip_compress(std::string_view bytes);
Result<std::string> gzip_decompress(std::string_view bytes, std::size_t max_bytes);

// One Length-Prefixed-Message; `compressed` sets the flag (the message must
// already be compressed).
std::string frame_message(std::string_view message, bool compressed = false);

// Takes Length-Prefixed-Messages out of a byte stream as it arrives.
class MessageReader {
 public:
  explicit MessageReader(std::size_t max_message_bytes) : max_(max_message_bytes) {}

  void append(std::string_view bytes) { buffer_.append(bytes.data(), bytes.size()); }

  // The next whole message, decompressed with `encoding` when its flag says
  // so; nullopt until one has arrived whole. Errors, each final for the
  // stream: a declared length over the limit (resource_exhausted, seen as
  // soon as the 5-byte prefix is in, before the message is buffered), the
  // compressed flag with no grpc-encoding (internal), reserved flag bits or
  // a trailer frame where none belongs (internal), a message that does not
  // decompress (internal) or decompresses past the limit
  // (resource_exhausted).
  Result<std::optional<std::string>> next(Compression encoding);

  // Bytes of a frame not yet whole: non-zero at the end of a stream means
  // the last message was cut short.
  std::size_t pending() const noexcept { return buffer_.size() - offset_; }

 private:
  std::size_t max_;
  std::string buffer_;
  std::size_t offset_ = 0;
};

// The one message of a whole unary request body, without copying it: a view
// of `body` when uncompressed, else of `inflated`, which receives the
// decompressed message. Errors are MessageReader::next()'s, and internal for
// a body that holds no message, ends inside it, or holds more than one
// (bytes after the first message, whatever they are).
Result<std::string_view> single_message(std::string_view body, Compression encoding, std::size_t max_bytes,
                                        std::string& inflated);

// grpc-message: bytes outside 0x20-0x7E, and '%', as %XX (uppercase hex).
std::string percent_encode(std::string_view message);
// The inverse; a '%' not followed by two hex digits is kept as it is
// (PROTOCOL-HTTP2.md asks receivers to be lenient).
std::string percent_decode(std::string_view encoded);

// A serialized google.rpc.Status {code, message, details: Any[]} for
// grpc-status-details-bin; empty when the error has no details (the header
// is then not sent).
std::string status_details(const Error& error);
// The error a reply's grpc-status / grpc-message / grpc-status-details-bin
// (base64-decoded) describe; details that do not parse are left out.
Error error_from_status(Code code, std::string message, std::optional<std::string_view> details);

// Base64 for "-bin" metadata: sent unpadded, read padded or not.
std::string encode_binary_header(std::string_view bytes);
std::optional<std::string> decode_binary_header(std::string_view value);

// gRPC-Web: the trailer frame (flag 0x80) that ends a response body,
// carrying "name: value\r\n" lines.
std::string web_trailer_frame(const std::vector<std::pair<std::string, std::string>>& trailers);
// Parses a trailer frame's payload (the lines) into lower-case names and
// values; invalid_argument for a line without ':'.
Result<std::vector<std::pair<std::string, std::string>>> parse_web_trailers(std::string_view payload);
// grpc-web-text bodies: base64, possibly several padded chunks one after the
// other (a client may encode each frame on its own). Whitespace is not
// allowed; invalid_argument for anything that is not base64.
Result<std::string> decode_web_text(std::string_view text);
std::string encode_web_text(std::string_view bytes);

// The grpc-status / grpc-message (and details) trailers for an outcome.
std::vector<std::pair<std::string, std::string>> status_trailers(const Error* error);

}  // namespace dispatch::grpc
