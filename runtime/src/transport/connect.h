// The Connect unary protocol's pure parts, shared by the HTTP server and
// client: content types, Connect-Timeout-Ms, the JSON error body, and the
// protobuf JSON <-> binary codec built from a service's embedded descriptor.
// No I/O and no Boost here, so all of it is testable without a socket.
//
// Not for: routing or sockets (http1_session.cc, http_client.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "dispatch/core/error.h"
#include "dispatch/core/result.h"

namespace google::protobuf {
class DescriptorPool;
}  // namespace google::protobuf

namespace dispatch::connect {

enum class Encoding { proto, json };

inline constexpr std::string_view kProtoContentType = "application/proto";
inline constexpr std::string_view kJsonContentType = "application/json";

// application/proto or application/json, case-insensitive, parameters such as
// "; charset=utf-8" ignored; nullopt for anything else.
std::optional<Encoding> encoding_from_content_type(std::string_view content_type) noexcept;

// Connect-Timeout-Ms: 1 to 10 ASCII digits. Anything else is invalid_argument
// with a message naming the header and the value.
Result<std::chrono::milliseconds> parse_timeout(std::string_view value);

// Dispatch-Attempt: a positive 32-bit decimal.
Result<uint32_t> parse_attempt(std::string_view value);

// A unary call made with GET (the Connect protocol's Unary-Get-Request, for
// methods whose .proto says idempotency_level = NO_SIDE_EFFECTS): its query
// `message=` (percent-encoded; URL-safe base64 with `base64=1`),
// `encoding=proto|json`, `compression=` (optional) and `connect=v1`
// (optional). Other parameters are left alone (a cache-buster, say).
struct GetQuery {
  Encoding encoding = Encoding::proto;
  std::string message;      // as sent: still compressed when `compression` names a coding
  std::string compression;  // "" or the coding named, for the caller to apply
};
// invalid_argument naming the problem for a query that is not one (a bad
// %-escape, base64 that does not decode, `connect` other than v1, a
// parameter given twice, no `message`); unimplemented for `encoding` missing or not
// proto or json.
Result<GetQuery> parse_get_query(std::string_view query);

// {"code": "...", "message": "...", "details": [{"type": ..., "value": base64}]}
// built with libprotobuf's JSON printer over a google.protobuf.Struct, so any
// text in the message is escaped correctly.
std::string error_to_json(const Error& error);

// The inverse, for a non-200 reply. A body that is not a Connect error (a
// proxy's HTML page, say) gives the code Connect assigns to `http_status` and
// a message quoting the status.
Error error_from_json(std::string_view body, int http_status);

// Converts between protobuf binary and canonical JSON for the messages of one
// generated service, using the FileDescriptorProto it embeds. Built once per
// service; safe to use from many threads at once.
class JsonCodec {
 public:
  // `file_descriptor`: serialized FileDescriptorProto whose dependencies are
  // protobuf's well-known types. A descriptor that does not parse or build is
  // an invalid_argument error naming the problem.
  static Result<std::unique_ptr<JsonCodec>> create(std::string_view file_descriptor);
  ~JsonCodec();
  JsonCodec(const JsonCodec&) = delete;
  JsonCodec& operator=(const JsonCodec&) = delete;

  // `type` is a full message name ("shop.AddRequest"). Bad JSON is
  // invalid_argument with the parser's complaint.
  Result<std::string> to_binary(std::string_view type, std::string_view json) const;
  // `print_defaults`: fields at their default value are printed too (proto3
  // JSON leaves them out), for readers that want every field present.
  Result<std::string> to_json(std::string_view type, std::string_view binary, bool print_defaults = false) const;

  // The pool names resolve in: the service's file and its well-known
  // dependencies, for readers that need a message's fields.
  const google::protobuf::DescriptorPool& pool() const;

 private:
  struct State;
  explicit JsonCodec(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace dispatch::connect
