// libFuzzer target: gRPC's byte-level parsers (transport/grpc_framing.h):
// length-prefixed messages (plain and gzip, with a small limit), grpc-timeout,
// grpc-encoding, the percent-encoded grpc-message, google.rpc.Status in
// grpc-status-details-bin, gRPC-Web text bodies and trailer frames, content
// types. Nothing may crash; what parses must satisfy its contract (a message
// within the limit, a timeout that formats back to at least itself).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "transport/grpc_framing.h"

namespace grpc = dispatch::grpc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr std::size_t kLimit = 4096;
  for (auto encoding : {grpc::Compression::identity, grpc::Compression::gzip}) {
    grpc::MessageReader reader(kLimit);
    // Two appends: a frame split across DATA frames.
    reader.append(in.substr(0, size / 3));
    reader.append(in.substr(size / 3));
    for (int i = 0; i < 64; ++i) {
      auto next = reader.next(encoding);
      if (!next.ok() || !*next) break;
      if ((*next)->size() > kLimit) std::abort();
    }
  }
  if (auto timeout = grpc::parse_timeout(in); timeout.ok()) {
    if (*grpc::parse_timeout(grpc::format_timeout(*timeout)) < *timeout) std::abort();
  }
  (void)grpc::compression_from_header(in);
  (void)grpc::accepts_gzip(in);
  if (grpc::percent_decode(grpc::percent_encode(in)) != in) std::abort();
  (void)grpc::percent_decode(in);
  (void)grpc::error_from_status(dispatch::Code::internal, "m", in);
  if (auto text = grpc::decode_web_text(in); text.ok()) (void)grpc::encode_web_text(*text);
  (void)grpc::parse_web_trailers(in);
  (void)grpc::parse_content_type(in);
  (void)grpc::decode_binary_header(in);
  (void)grpc::gzip_decompress(in, kLimit);
  return 0;
}
