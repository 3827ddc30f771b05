// gRPC's pure parts (see the header). gzip is zlib's, base64 libsodium's
// (security/base64.h), the google.rpc.Status message protobuf's coded
// streams.
#include "transport/grpc_framing.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>
#include <zlib.h>

#include <algorithm>

#include "security/base64.h"
#include "transport/http_text.h"

namespace dispatch::grpc {
namespace {

using google::protobuf::internal::WireFormatLite;

using transport::iequals_ascii;
using transport::istarts_with_ascii;
using transport::trim_ows;

constexpr std::string_view kTypeUrlPrefix = "type.googleapis.com/";

}  // namespace

std::optional<ContentType> parse_content_type(std::string_view content_type) noexcept {
  std::string_view base = trim_ows(content_type.substr(0, content_type.find(';')));
  // Longest prefixes first: "application/grpc" is a prefix of the others.
  struct Known {
    std::string_view prefix;
    Variant variant;
  };
  for (const Known& k : {Known{"application/grpc-web-text", Variant::web_text},
                         Known{"application/grpc-web", Variant::web}, Known{"application/grpc", Variant::grpc}}) {
    if (!istarts_with_ascii(base, k.prefix)) continue;
    const std::string_view codec = base.substr(k.prefix.size());
    if (codec.empty() || iequals_ascii(codec, "+proto")) {
      return ContentType{k.variant, Codec::proto};
    }
    if (iequals_ascii(codec, "+json")) return ContentType{k.variant, Codec::json};
    return std::nullopt;
  }
  return std::nullopt;
}

bool looks_like_grpc(std::string_view content_type) noexcept {
  return istarts_with_ascii(trim_ows(content_type), "application/grpc");
}

std::string_view content_type_of(Variant variant, Codec codec) noexcept {
  const bool json = codec == Codec::json;
  switch (variant) {
    case Variant::grpc:
      return json ? "application/grpc+json" : "application/grpc";
    case Variant::web:
      return json ? "application/grpc-web+json" : "application/grpc-web+proto";
    case Variant::web_text:
      return json ? "application/grpc-web-text+json" : "application/grpc-web-text+proto";
  }
  return "application/grpc";
}

Result<std::chrono::nanoseconds> parse_timeout(std::string_view value) {
  auto bad = [&] {
    return Error(Code::invalid_argument, "grpc-timeout '" + std::string(value.substr(0, 40)) +
                                             "' is not 1-8 digits followed by a unit (H, M, S, m, u or n)");
  };
  if (value.size() < 2 || value.size() > 9) return bad();
  int64_t amount = 0;
  for (char c : value.substr(0, value.size() - 1)) {
    if (c < '0' || c > '9') return bad();
    amount = amount * 10 + (c - '0');
  }
  using namespace std::chrono;
  // Eight digits of hours (or minutes) overflow int64 nanoseconds. A
  // deadline that far away is no deadline: cap it at a hundred years.
  constexpr nanoseconds kLongest = hours(24 * 365 * 100);
  auto in = [&](auto unit) -> nanoseconds {
    using Unit = decltype(unit);
    if (amount > duration_cast<Unit>(kLongest).count()) return kLongest;
    return duration_cast<nanoseconds>(Unit(amount));
  };
  switch (value.back()) {
    case 'H':
      return in(hours{});
    case 'M':
      return in(minutes{});
    case 'S':
      return in(seconds{});
    case 'm':
      return in(milliseconds{});
    case 'u':
      return in(microseconds{});
    case 'n':
      return nanoseconds(amount);
    default:
      return bad();
  }
}

std::string format_timeout(std::chrono::nanoseconds timeout) {
  constexpr int64_t kMax = 99'999'999;  // 8 digits
  struct Unit {
    int64_t ns;
    char name;
  };
  const int64_t ns = std::max<int64_t>(timeout.count(), 1);
  for (const Unit& u : {Unit{1, 'n'}, Unit{1'000, 'u'}, Unit{1'000'000, 'm'}, Unit{1'000'000'000, 'S'},
                        Unit{60'000'000'000, 'M'}, Unit{3'600'000'000'000, 'H'}}) {
    const int64_t amount = (ns + u.ns - 1) / u.ns;  // rounded up: never a shorter deadline
    if (amount <= kMax) return std::to_string(amount) + u.name;
  }
  return std::to_string(kMax) + "H";
}

Result<Compression> compression_from_header(std::optional<std::string_view> grpc_encoding) {
  if (!grpc_encoding || trim_ows(*grpc_encoding).empty()) return Compression::identity;
  const std::string_view name = trim_ows(*grpc_encoding);
  if (iequals_ascii(name, "identity")) return Compression::identity;
  if (iequals_ascii(name, "gzip")) return Compression::gzip;
  return Error(Code::unimplemented, "grpc-encoding '" + std::string(name.substr(0, 40)) +
                                        "' is not supported; this server accepts " + std::string(kAcceptEncoding));
}

bool accepts_gzip(std::optional<std::string_view> grpc_accept_encoding) noexcept {
  if (!grpc_accept_encoding) return false;
  return transport::find_list_item(*grpc_accept_encoding,
                                   [](std::string_view item) { return iequals_ascii(item, "gzip"); });
}

std::string gzip_compress(std::string_view bytes) {
  z_stream z{};
  // windowBits 15 + 16: a gzip wrapper, not zlib's.
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return std::string();  // only out of memory; the caller sends it uncompressed then
  }
  std::string out(deflateBound(&z, static_cast<uLong>(bytes.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(rc == Z_STREAM_END ? z.total_out : 0);
  deflateEnd(&z);
  return out;
}

Result<std::string> gzip_decompress(std::string_view bytes, std::size_t max_bytes) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return Error(Code::resource_exhausted, "cannot start gzip decompression");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  std::string out;
  int rc = Z_OK;
  // Output grows in steps, never past max_bytes + 1 (one byte over tells
  // "too big" from "exactly the limit"): a small bomb cannot make a big
  // allocation.
  while (out.size() <= max_bytes) {
    const std::size_t step = std::clamp<std::size_t>(bytes.size() * 4, 4096, 1 << 20);
    const std::size_t room = std::min(step, max_bytes + 1 - out.size());
    const std::size_t before = out.size();
    out.resize(before + room);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + before);
    z.avail_out = static_cast<uInt>(room);
    rc = inflate(&z, Z_NO_FLUSH);
    out.resize(before + room - z.avail_out);
    if (rc != Z_OK) break;  // the end, a corrupt stream, or input that ended early (Z_BUF_ERROR)
  }
  const bool whole = rc == Z_STREAM_END && z.avail_in == 0;
  inflateEnd(&z);
  if (out.size() > max_bytes) {
    return Error(Code::resource_exhausted, "gzip message decompresses to more than the limit of " +
                                               std::to_string(max_bytes) + " bytes");
  }
  if (!whole) return Error(Code::internal, "the message is not a complete gzip stream (grpc-encoding: gzip)");
  return out;
}

std::string frame_message(std::string_view message, bool compressed) {
  std::string out;
  out.reserve(5 + message.size());
  const auto n = static_cast<uint32_t>(message.size());
  out.push_back(compressed ? 1 : 0);
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(message.data(), message.size());
  return out;
}

namespace {

// A Length-Prefixed-Message's 5-byte prefix at the start of `bytes` (at
// least 5 of them), checked.
struct FramePrefix {
  bool compressed = false;
  uint32_t length = 0;
};

Result<FramePrefix> read_prefix(std::string_view bytes, std::size_t max) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const uint8_t flags = p[0];
  const uint32_t length = (uint32_t{p[1]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 8) | p[4];
  if (flags & 0x80) return Error(Code::internal, "a trailer frame (flag 0x80) in a request; requests carry messages only");
  if (flags & 0x7e) {
    return Error(Code::internal, "message frame has reserved flag bits set (flag byte " + std::to_string(flags) + ")");
  }
  if (length > max) {
    return Error(Code::resource_exhausted, "message of " + std::to_string(length) +
                                               " bytes exceeds the limit of " + std::to_string(max) + " bytes");
  }
  return FramePrefix{(flags & 1) != 0, length};
}

// A compressed payload's message, decompressed.
Result<std::string> inflate(std::string_view payload, Compression encoding, std::size_t max) {
  if (encoding == Compression::identity) {
    return Error(Code::internal, "message has the compressed flag set but the request names no grpc-encoding");
  }
  return gzip_decompress(payload, max);
}

}  // namespace

Result<std::optional<std::string>> MessageReader::next(Compression encoding) {
  if (pending() < 5) return std::optional<std::string>();
  auto prefix = read_prefix(std::string_view(buffer_).substr(offset_), max_);
  if (!prefix.ok()) return std::move(prefix).error();
  const uint32_t length = prefix->length;
  if (pending() < 5 + std::size_t{length}) return std::optional<std::string>();
  std::string_view payload(buffer_.data() + offset_ + 5, length);
  std::string message;
  if (prefix->compressed) {
    auto inflated = inflate(payload, encoding, max_);
    if (!inflated.ok()) return std::move(inflated).error();
    message = std::move(*inflated);
  } else {
    message.assign(payload.data(), payload.size());
  }
  offset_ += 5 + length;
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  } else if (offset_ > 4096 && offset_ * 2 > buffer_.size()) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  return std::optional<std::string>(std::move(message));
}

Result<std::string_view> single_message(std::string_view body, Compression encoding, std::size_t max_bytes,
                                        std::string& inflated) {
  if (body.size() < 5) {
    return Error(Code::internal, body.empty() ? "a unary call carries one request message; none came"
                                              : "the request ended inside its message");
  }
  auto prefix = read_prefix(body, max_bytes);
  if (!prefix.ok()) return std::move(prefix).error();
  const std::size_t end = 5 + std::size_t{prefix->length};
  if (body.size() < end) return Error(Code::internal, "the request ended inside its message");
  if (body.size() > end) return Error(Code::internal, "a unary call carries one request message; more came");
  const std::string_view payload = body.substr(5, prefix->length);
  if (!prefix->compressed) return payload;
  auto message = inflate(payload, encoding, max_bytes);
  if (!message.ok()) return std::move(message).error();
  inflated = std::move(*message);
  return std::string_view(inflated);
}

std::string percent_encode(std::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (char ch : message) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string percent_decode(std::string_view encoded) {
  const auto hex = transport::hex_value;
  std::string out;
  out.reserve(encoded.size());
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '%' && i + 2 < encoded.size() && hex(encoded[i + 1]) >= 0 && hex(encoded[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(encoded[i + 1]) * 16 + hex(encoded[i + 2])));
      i += 2;
    } else {
      out.push_back(encoded[i]);
    }
  }
  return out;
}

std::string status_details(const Error& error) {
  if (error.details().empty()) return std::string();
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    WireFormatLite::WriteInt32(1, static_cast<int32_t>(error.code()), &coded);
    WireFormatLite::WriteString(2, error.message(), &coded);
    for (const ErrorDetail& d : error.details()) {
      std::string any;
      {
        google::protobuf::io::StringOutputStream any_stream(&any);
        google::protobuf::io::CodedOutputStream any_coded(&any_stream);
        WireFormatLite::WriteString(1, std::string(kTypeUrlPrefix) + d.type, &any_coded);
        WireFormatLite::WriteBytes(2, d.value, &any_coded);
      }
      WireFormatLite::WriteBytes(3, any, &coded);
    }
  }
  return out;
}

namespace {

// google.protobuf.Any {type_url = 1, value = 2} -> an ErrorDetail; false if
// it does not parse.
bool read_any(std::string_view bytes, ErrorDetail* out) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  while (uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    if (WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED && (field == 1 || field == 2)) {
      std::string s;
      if (!WireFormatLite::ReadString(&in, &s)) return false;
      if (field == 1) {
        const auto slash = s.rfind('/');
        out->type = slash == std::string::npos ? s : s.substr(slash + 1);
      } else {
        out->value = std::move(s);
      }
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return in.ConsumedEntireMessage();
}

}  // namespace

Error error_from_status(Code code, std::string message, std::optional<std::string_view> details) {
  std::vector<ErrorDetail> parsed;
  if (details && !details->empty()) {
    google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(details->data()),
                                              static_cast<int>(details->size()));
    bool ok = true;
    while (uint32_t tag = in.ReadTag()) {
      if (WireFormatLite::GetTagFieldNumber(tag) == 3 &&
          WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
        std::string any;
        ErrorDetail detail;
        if (!WireFormatLite::ReadBytes(&in, &any) || !read_any(any, &detail)) {
          ok = false;
          break;
        }
        parsed.push_back(std::move(detail));
      } else if (!WireFormatLite::SkipField(&in, tag)) {
        ok = false;
        break;
      }
    }
    if (!ok || !in.ConsumedEntireMessage()) parsed.clear();
  }
  return Error(code, std::move(message), std::move(parsed));
}

std::string encode_binary_header(std::string_view bytes) {
  std::string out = security::detail::base64_encode(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

std::optional<std::string> decode_binary_header(std::string_view value) {
  return security::detail::base64_decode(trim_ows(value));
}

std::string web_trailer_frame(const std::vector<std::pair<std::string, std::string>>& trailers) {
  std::string block;
  for (const auto& [name, value] : trailers) block += name + ": " + value + "\r\n";
  std::string frame = frame_message(block);
  frame[0] = static_cast<char>(0x80);
  return frame;
}

Result<std::vector<std::pair<std::string, std::string>>> parse_web_trailers(std::string_view payload) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!payload.empty()) {
    auto end = payload.find("\r\n");
    const std::string_view line = payload.substr(0, end);
    payload = end == std::string_view::npos ? std::string_view() : payload.substr(end + 2);
    if (line.empty()) continue;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Error(Code::internal, "gRPC-Web trailer line without a name: '" + std::string(line.substr(0, 80)) + "'");
    }
    out.emplace_back(transport::lowercase_ascii(std::string(trim_ows(line.substr(0, colon)))),
                     std::string(trim_ows(line.substr(colon + 1))));
  }
  return out;
}

Result<std::string> decode_web_text(std::string_view text) {
  std::string out;
  while (!text.empty()) {
    // A chunk ends with its padding, or at the end of the body.
    std::size_t end = text.size();
    const auto pad = text.find('=');
    if (pad != std::string_view::npos) {
      end = (pad / 4 + 1) * 4;
      if (end > text.size()) end = text.size();
    }
    auto decoded = security::detail::base64_decode(text.substr(0, end));
    if (!decoded) return Error(Code::invalid_argument, "the grpc-web-text body is not base64");
    out += *decoded;
    text.remove_prefix(end);
  }
  return out;
}

std::string encode_web_text(std::string_view bytes) { return security::detail::base64_encode(bytes); }

std::vector<std::pair<std::string, std::string>> status_trailers(const Error* error) {
  std::vector<std::pair<std::string, std::string>> out;
  if (error == nullptr) {
    out.emplace_back("grpc-status", "0");
    return out;
  }
  out.emplace_back("grpc-status", std::to_string(static_cast<int>(error->code())));
  if (!error->message().empty()) out.emplace_back("grpc-message", percent_encode(error->message()));
  std::string details = status_details(*error);
  if (!details.empty()) out.emplace_back("grpc-status-details-bin", encode_binary_header(details));
  return out;
}

}  // namespace dispatch::grpc
