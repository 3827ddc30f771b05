// Canonical codes, their names and HTTP statuses, and dispatch::Error.
#include "dispatch/core/error.h"

#include <array>
#include <stdexcept>

namespace dispatch {
namespace {

struct CodeInfo {
  Code code;
  std::string_view name;
  int http_status;
};

// Connect protocol, "Error Codes" table.
constexpr std::array<CodeInfo, 17> kCodes{{
    {Code::ok, "ok", 200},
    {Code::canceled, "canceled", 499},
    {Code::unknown, "unknown", 500},
    {Code::invalid_argument, "invalid_argument", 400},
    {Code::deadline_exceeded, "deadline_exceeded", 504},
    {Code::not_found, "not_found", 404},
    {Code::already_exists, "already_exists", 409},
    {Code::permission_denied, "permission_denied", 403},
    {Code::resource_exhausted, "resource_exhausted", 429},
    {Code::failed_precondition, "failed_precondition", 400},
    {Code::aborted, "aborted", 409},
    {Code::out_of_range, "out_of_range", 400},
    {Code::unimplemented, "unimplemented", 501},
    {Code::internal, "internal", 500},
    {Code::unavailable, "unavailable", 503},
    {Code::data_loss, "data_loss", 500},
    {Code::unauthenticated, "unauthenticated", 401},
}};

}  // namespace

std::string_view code_name(Code code) noexcept {
  const auto i = static_cast<std::size_t>(code);
  return i < kCodes.size() ? kCodes[i].name : std::string_view("unknown");
}

std::optional<Code> code_from_name(std::string_view name) noexcept {
  for (const auto& info : kCodes) {
    if (info.name == name) return info.code;
  }
  return std::nullopt;
}

int code_to_http_status(Code code) noexcept {
  const auto i = static_cast<std::size_t>(code);
  return i < kCodes.size() ? kCodes[i].http_status : 500;
}

Code code_from_http_status(int status) noexcept {
  // Connect protocol, "HTTP to Error Code" for replies without a body.
  switch (status) {
    case 400: return Code::internal;
    case 401: return Code::unauthenticated;
    case 403: return Code::permission_denied;
    case 404: return Code::unimplemented;
    case 429: case 502: case 503: case 504: return Code::unavailable;
    default: return Code::unknown;
  }
}

// An error is a failure: one made with Code::ok (a peer's {"code":"ok"}, a
// status copied without a check) would otherwise go out as a success, so
// it is taken as unknown.
Error::Error(Code code, std::string message, std::vector<ErrorDetail> details)
    : code_(code == Code::ok ? Code::unknown : code), message_(std::move(message)), details_(std::move(details)) {
  what_.reserve(code_name(code_).size() + 2 + message_.size());
  what_.append(code_name(code_)).append(": ").append(message_);
}

Error Error::with_context(std::string_view context) const {
  std::string message(context);
  message.append(": ").append(message_);
  return Error(code_, std::move(message), details_);
}

Error error_from_current_exception() noexcept {
  try {
    throw;
  } catch (const Error& e) {
    return e;
  } catch (const std::invalid_argument& e) {
    return Error(Code::invalid_argument, e.what());
  } catch (const std::exception& e) {
    return Error(Code::internal, e.what());
  } catch (...) {
    return Error(Code::internal, "the function threw a value that is not a std::exception");
  }
}

}  // namespace dispatch
