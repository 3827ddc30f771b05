// dispatch::Error and the canonical codes: the one error type that crosses
// every layer, from a decoder's complaint about bytes to a transport failure
// to a user function's exception. Codes are the Connect/gRPC canonical codes,
// so an error keeps its meaning when it crosses a process or a language.
//
// Not for: HTTP details (the transport maps codes to statuses) or logging.
// Public header: compiles as C++17 and C++20.
#pragma once

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dispatch {

// Canonical codes, numbered as in gRPC; names as Connect spells them.
enum class Code : int {
  ok = 0,
  canceled = 1,
  unknown = 2,
  invalid_argument = 3,
  deadline_exceeded = 4,
  not_found = 5,
  already_exists = 6,
  permission_denied = 7,
  resource_exhausted = 8,
  failed_precondition = 9,
  aborted = 10,
  out_of_range = 11,
  unimplemented = 12,
  internal = 13,
  unavailable = 14,
  data_loss = 15,
  unauthenticated = 16,
};

// "invalid_argument" etc., as Connect's JSON error body spells them.
std::string_view code_name(Code code) noexcept;
// The inverse of code_name(); nullopt for anything else.
std::optional<Code> code_from_name(std::string_view name) noexcept;
// Connect's HTTP status for a code (e.g. invalid_argument -> 400).
int code_to_http_status(Code code) noexcept;
// Connect's code for an HTTP status when a reply carries no error body.
Code code_from_http_status(int status) noexcept;

// One error detail: a protobuf message packed like google.protobuf.Any.
// `type` is the full message name without a URL prefix ("google.rpc.RetryInfo"),
// `value` the message's binary encoding.
struct ErrorDetail {
  std::string type;
  std::string value;
  friend bool operator==(const ErrorDetail& a, const ErrorDetail& b) {
    return a.type == b.type && a.value == b.value;
  }
};

// Thrown by synchronous stubs and by user functions; carried by Result<T>.
// what() is "<code>: <message>". Code::ok is taken as unknown.
class Error : public std::exception {
 public:
  Error(Code code, std::string message, std::vector<ErrorDetail> details = {});

  Code code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  const std::vector<ErrorDetail>& details() const noexcept { return details_; }
  const char* what() const noexcept override { return what_.c_str(); }

  // A copy whose message is "<context>: <message>", code and details kept.
  Error with_context(std::string_view context) const;

 private:
  Code code_;
  std::string message_;
  std::vector<ErrorDetail> details_;
  std::string what_;
};

// The error a caller sees for an exception escaping a user function:
// dispatch::Error keeps its code, std::invalid_argument becomes
// invalid_argument, any other exception internal with its what().
// Call only from inside a catch block.
Error error_from_current_exception() noexcept;

}  // namespace dispatch
