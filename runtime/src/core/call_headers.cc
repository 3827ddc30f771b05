// RequestHeaders' lookups, the checks of a header a function adds to its
// answer, and the this_call() shortcuts.
#include "dispatch/core/call_headers.h"

#include "dispatch/core/service.h"

namespace dispatch {
namespace {

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool same_name(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Names the protocols or the server write themselves.
const char* owner_of(std::string_view name) noexcept {
  for (std::string_view prefix : {"grpc-", "connect-", "content-"}) {
    if (name.starts_with(prefix)) return "the protocol";
  }
  if (name.starts_with("access-control-")) return "CORS";
  if (name.starts_with("ce-")) return "CloudEvents (a reply event's attributes)";
  for (std::string_view field : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
                                 "trailer", "host", "date", "vary", "accept-encoding"}) {
    if (name == field) return "HTTP";
  }
  return nullptr;
}

std::string quoted(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 100)) {
    if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[(static_cast<unsigned char>(c) >> 4) & 0xf];
      out += hex[static_cast<unsigned char>(c) & 0xf];
    }
  }
  if (s.size() > 100) out += "...";
  return out + "'";
}

}  // namespace

std::optional<std::string> RequestHeaders::get(std::string_view name) const {
  std::optional<std::string> found;
  for_each([&](std::string_view n, std::string_view v) {
    if (!found && same_name(n, name)) found.emplace(v);
  });
  return found;
}

std::vector<std::string> RequestHeaders::values(std::string_view name) const {
  std::vector<std::string> out;
  for_each([&](std::string_view n, std::string_view v) {
    if (same_name(n, name)) out.emplace_back(v);
  });
  return out;
}

std::vector<std::pair<std::string, std::string>> RequestHeaders::all() const {
  std::vector<std::pair<std::string, std::string>> out;
  for_each([&](std::string_view n, std::string_view v) { out.emplace_back(n, v); });
  return out;
}

void RequestHeaderList::for_each(const Visitor& visit) const {
  std::string name;
  for (const auto& [n, v] : lines_) {
    if (!n.empty() && n[0] == ':') continue;
    name.assign(n);
    for (char& c : name) c = lower(c);
    visit(name, v);
  }
}

Result<void> ResponseHeaders::add(std::string_view name, std::string_view value) {
  if (name.empty()) return Error(Code::invalid_argument, "a response header needs a name");
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) {
      return Error(Code::invalid_argument, "response header name " + quoted(name) +
                                               ": only lower-case letters, digits, '-', '_' and '.' (gRPC "
                                               "metadata keys)");
    }
  }
  if (const char* owner = owner_of(name)) {
    return Error(Code::invalid_argument,
                 "response header " + quoted(name) + " is written by " + owner + ", not by a function");
  }
  if (name.ends_with("-bin")) {
    for (char c : value) {
      const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                      c == '/' || c == '=';
      if (!ok) {
        return Error(Code::invalid_argument, "binary response header " + quoted(name) +
                                                 ": the value must be base64 (encode_binary_header()), got " +
                                                 quoted(value));
      }
    }
  } else {
    for (char c : value) {
      if (c < 0x20 || c > 0x7e) {
        return Error(Code::invalid_argument, "response header " + quoted(name) + ": value " + quoted(value) +
                                                 " has a byte outside printable ASCII (name it '" +
                                                 std::string(name) + "-bin' and send base64 for bytes)");
      }
    }
    if (!value.empty() && (value.front() == ' ' || value.back() == ' ')) {
      return Error(Code::invalid_argument,
                   "response header " + quoted(name) + ": value " + quoted(value) + " starts or ends with a space");
    }
  }
  const std::size_t bytes = name.size() + value.size();
  if (bytes_ + bytes > kMaxBytes) {
    return Error(Code::resource_exhausted, "response header " + quoted(name) + " would take the answer's headers to " +
                                               std::to_string(bytes_ + bytes) + " bytes, past the limit of " +
                                               std::to_string(kMaxBytes));
  }
  lines_.emplace_back(name, value);
  bytes_ += bytes;
  return {};
}

std::optional<std::string> request_header(std::string_view name) {
  const RequestHeaders* headers = this_call().request_headers;
  if (headers == nullptr) return std::nullopt;
  return headers->get(name);
}

Result<void> add_response_header(std::string_view name, std::string_view value) {
  ResponseHeaders* headers = this_call().response_headers;
  if (headers == nullptr) {
    return Error(Code::failed_precondition,
                 "response header " + quoted(name) +
                     ": this call's answer carries no headers (no call is running on this thread, or it is a "
                     "durable call, whose result goes to the scheduler)");
  }
  return headers->add(name, value);
}

}  // namespace dispatch
