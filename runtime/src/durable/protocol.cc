// Status tables of the Dispatch protocol and Any/Timestamp helpers.
#include "durable/protocol.h"

#include <array>
#include <cctype>

namespace dispatch {

RunStatus run_status_for(Code code) noexcept {
  // The Python SDK's spirit: timeouts TIMEOUT, bad input INVALID_ARGUMENT,
  // connection-ish failures temporary, anything unclassified permanent
  // (dispatch-py status_for_error falls back to PERMANENT_ERROR).
  switch (code) {
    case Code::ok: return RunStatus::ok;
    case Code::deadline_exceeded: return RunStatus::timeout;
    case Code::resource_exhausted: return RunStatus::throttled;
    case Code::invalid_argument:
    case Code::out_of_range: return RunStatus::invalid_argument;
    case Code::unavailable:
    case Code::aborted:
    case Code::canceled: return RunStatus::temporary_error;
    case Code::not_found: return RunStatus::not_found;
    case Code::unauthenticated: return RunStatus::unauthenticated;
    case Code::permission_denied: return RunStatus::permission_denied;
    case Code::unknown:
    case Code::already_exists:
    case Code::failed_precondition:
    case Code::unimplemented:
    case Code::internal:
    case Code::data_loss: return RunStatus::permanent_error;
  }
  return RunStatus::permanent_error;
}

std::string_view run_status_name(RunStatus status) noexcept {
  static constexpr std::array<std::string_view, 16> kNames{
      "STATUS_UNSPECIFIED",     "STATUS_OK",
      "STATUS_TIMEOUT",         "STATUS_THROTTLED",
      "STATUS_INVALID_ARGUMENT", "STATUS_INVALID_RESPONSE",
      "STATUS_TEMPORARY_ERROR", "STATUS_PERMANENT_ERROR",
      "STATUS_INCOMPATIBLE_STATE", "STATUS_DNS_ERROR",
      "STATUS_TCP_ERROR",       "STATUS_TLS_ERROR",
      "STATUS_HTTP_ERROR",      "STATUS_UNAUTHENTICATED",
      "STATUS_PERMISSION_DENIED", "STATUS_NOT_FOUND"};
  const auto i = static_cast<std::size_t>(status);
  return i < kNames.size() ? kNames[i] : std::string_view("STATUS_UNKNOWN");
}

bool is_temporary(RunStatus status) noexcept {
  switch (status) {
    case RunStatus::timeout:
    case RunStatus::throttled:
    case RunStatus::temporary_error:
    case RunStatus::incompatible_state:
    case RunStatus::dns_error:
    case RunStatus::tcp_error:
    case RunStatus::tls_error:
    case RunStatus::http_error: return true;
    default: return false;
  }
}

namespace protocol {

void pack_any(std::string_view type, std::string value, google::protobuf::Any* any) {
  std::string url(kTypeUrlPrefix);
  url.append(type);
  any->set_type_url(std::move(url));
  any->set_value(std::move(value));
}

std::string_view any_type(const google::protobuf::Any& any) noexcept {
  std::string_view url = any.type_url();
  const auto slash = url.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : url.substr(slash + 1);
}

RunStatus status_for_transport_error(const Error& error) noexcept {
  // A reply without a Connect error body: dispatch::HttpClient says
  // "HTTP <status> ..." and guesses a code; the spec's table for the status
  // itself is more precise (429 THROTTLED, 501 PERMANENT_ERROR, ...).
  const std::string& m = error.message();
  if (m.size() >= 8 && m.compare(0, 5, "HTTP ") == 0 && std::isdigit(static_cast<unsigned char>(m[5])) &&
      std::isdigit(static_cast<unsigned char>(m[6])) && std::isdigit(static_cast<unsigned char>(m[7])) &&
      (m.size() == 8 || m[8] == ' ')) {
    return status_for_http((m[5] - '0') * 100 + (m[6] - '0') * 10 + (m[7] - '0'));
  }
  // A reply that came but is not a RunResponse, as HttpClient words it: a
  // 200 whose body is not protobuf (a web page or a proxy's answer at the
  // URL), or one past the client's size limit. INVALID_RESPONSE (final), as
  // a body that does not parse is: the next attempt gets the same answer.
  // They were TEMPORARY_ERROR and THROTTLED, retried up to max_attempts and
  // halving the endpoint's concurrency each time.
  if (m.compare(0, 11, "reply from ") == 0 &&
      ((error.code() == Code::internal && m.find(" has Content-Type '") != std::string::npos) ||
       (error.code() == Code::resource_exhausted && m.find(" exceeds the client's limit of ") != std::string::npos))) {
    return RunStatus::invalid_response;
  }
  switch (error.code()) {
    // No reply came: the connection failed, or the scheduler's own deadline
    // passed first. (A Connect 503 or 504 lands here too: TEMPORARY_ERROR
    // by the spec's table, retried the same.)
    case Code::unavailable: return RunStatus::tcp_error;
    case Code::deadline_exceeded: return RunStatus::timeout;
    // A Connect error body: its code stands for the HTTP status the Connect
    // protocol answers it with, and the spec maps that status. So aborted
    // (409) and canceled (499) are final, although a function that throws
    // them is retried (run_status_for): they came before any function ran.
    case Code::invalid_argument:
    case Code::failed_precondition:
    case Code::out_of_range: return status_for_http(400);
    case Code::unauthenticated: return status_for_http(401);
    case Code::permission_denied: return status_for_http(403);
    case Code::not_found: return status_for_http(404);
    case Code::already_exists:
    case Code::aborted: return status_for_http(409);
    case Code::resource_exhausted: return status_for_http(429);
    case Code::canceled: return status_for_http(499);
    case Code::unimplemented: return status_for_http(501);
    default: return status_for_http(500);  // internal, unknown, data_loss
  }
}

RunStatus status_for_http(int http_status) noexcept {
  switch (http_status) {
    case 400: return RunStatus::invalid_argument;
    case 401: return RunStatus::unauthenticated;
    case 403: return RunStatus::permission_denied;
    case 404: return RunStatus::not_found;
    case 408: return RunStatus::timeout;
    case 429: return RunStatus::throttled;
    case 501: return RunStatus::permanent_error;
    default: break;
  }
  if (http_status >= 200 && http_status < 300) return RunStatus::ok;
  if (http_status >= 500 && http_status < 600) return RunStatus::temporary_error;
  return RunStatus::permanent_error;
}

void to_timestamp(int64_t unix_ms, google::protobuf::Timestamp* ts) {
  int64_t seconds = unix_ms / 1000;
  int64_t millis = unix_ms % 1000;
  if (millis < 0) {
    millis += 1000;
    seconds -= 1;
  }
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(millis * 1000000));
}

int64_t from_timestamp(const google::protobuf::Timestamp& ts) noexcept {
  return ts.seconds() * 1000 + ts.nanos() / 1000000;
}

bool valid_function_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(name[0])) return false;
  for (char c : name.substr(1)) {
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '<' && c != '>' && c != '.') return false;
  }
  return true;
}

}  // namespace protocol
}  // namespace dispatch
