// Connect unary protocol helpers: headers, error bodies, JSON codec.
#include "transport/connect.h"

#include "security/base64.h"
#include "transport/http_text.h"
#include "transport/json_check.h"
#include "transport/json_fast.h"

#include "dispatch/wire/wire.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/stubs/strutil.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver.h>
#include <google/protobuf/type.pb.h>
#include <google/protobuf/util/type_resolver_util.h>

#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

namespace dispatch::connect {
namespace {

namespace pb = google::protobuf;

constexpr std::string_view kTypeUrlPrefix = "type.googleapis.com";

using transport::find_list_item;
using transport::iequals_ascii;
using transport::trim_ows;

std::string status_message(const pb::util::Status& status) {
  return std::string(status.message());
}

// Adds `name` and, first, its dependencies from the generated pool (the
// well-known types linked into libprotobuf) to `pool`. Copying them, rather
// than using generated_pool() as an underlay, keeps a user's own linked
// protos from colliding with the service's messages.
bool add_with_dependencies(const std::string& name, pb::DescriptorPool& pool,
                           std::set<std::string>& added, std::string& problem) {
  if (added.count(name)) return true;
  const pb::FileDescriptor* file = pb::DescriptorPool::generated_pool()->FindFileByName(name);
  if (file == nullptr) {
    problem = "dependency '" + name + "' is not one of protobuf's well-known types";
    return false;
  }
  for (int i = 0; i < file->dependency_count(); ++i) {
    if (!add_with_dependencies(file->dependency(i)->name(), pool, added, problem)) return false;
  }
  pb::FileDescriptorProto proto;
  file->CopyTo(&proto);
  if (pool.BuildFile(proto) == nullptr) {
    problem = "cannot build well-known type file '" + name + "'";
    return false;
  }
  added.insert(name);
  return true;
}

}  // namespace

std::optional<Encoding> encoding_from_content_type(std::string_view content_type) noexcept {
  const auto semicolon = content_type.find(';');
  const std::string_view media = trim_ows(content_type.substr(0, semicolon));
  if (iequals_ascii(media, kProtoContentType)) return Encoding::proto;
  if (!iequals_ascii(media, kJsonContentType)) return std::nullopt;
  // JSON is UTF-8 (RFC 8259 8.1): a charset naming anything else is a
  // content type this side does not read, as connect-go has it.
  const std::string_view params =
      semicolon == std::string_view::npos ? std::string_view() : content_type.substr(semicolon + 1);
  const bool other_charset = find_list_item(
      params,
      [](std::string_view param) {
        const std::size_t eq = param.find('=');
        if (eq == std::string_view::npos || !iequals_ascii(trim_ows(param.substr(0, eq)), "charset")) return false;
        std::string_view charset = trim_ows(param.substr(eq + 1));
        if (charset.size() >= 2 && charset.front() == '"' && charset.back() == '"') {
          charset = charset.substr(1, charset.size() - 2);
        }
        return !iequals_ascii(charset, "utf-8") && !iequals_ascii(charset, "utf8");
      },
      ';');
  if (other_charset) return std::nullopt;
  return Encoding::json;
}

Result<std::chrono::milliseconds> parse_timeout(std::string_view value) {
  const bool digits_only =
      !value.empty() && value.size() <= 10 &&
      value.find_first_not_of("0123456789") == std::string_view::npos;
  if (!digits_only) {
    return Error(Code::invalid_argument, "Connect-Timeout-Ms must be 1 to 10 digits, got '" +
                                             std::string(value.substr(0, 32)) + "'");
  }
  return std::chrono::milliseconds(std::stoll(std::string(value)));
}

Result<uint32_t> parse_attempt(std::string_view value) {
  const bool digits_only = !value.empty() && value.size() <= 10 &&
                           value.find_first_not_of("0123456789") == std::string_view::npos;
  const unsigned long long n = digits_only ? std::stoull(std::string(value)) : 0;
  if (n == 0 || n > UINT32_MAX) {
    return Error(Code::invalid_argument, "Dispatch-Attempt must be a positive 32-bit number, got '" +
                                             std::string(value.substr(0, 32)) + "'");
  }
  return static_cast<uint32_t>(n);
}

namespace {

// application/x-www-form-urlencoded's decoding, as Go's url.ParseQuery (which
// connect-go serves GET with) does it: "%XX" is the byte, '+' a space.
std::optional<std::string> form_decode(std::string_view text) {
  const auto hex = transport::hex_value;
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] != '%') {
      out += text[i];
    } else {
      if (i + 2 >= text.size()) return std::nullopt;
      const int high = hex(text[i + 1]), low = hex(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out += static_cast<char>(high * 16 + low);
      i += 2;
    }
  }
  return out;
}

}  // namespace

Result<GetQuery> parse_get_query(std::string_view query) {
  std::optional<std::string> message, encoding, base64, compression, connect;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    auto name = form_decode(pair.substr(0, eq));
    auto value = form_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!name || !value) {
      return Error(Code::invalid_argument,
                   "the query has a malformed %-escape in '" + std::string(pair.substr(0, 80)) + "'");
    }
    std::optional<std::string>* slot = *name == "message"       ? &message
                                       : *name == "encoding"    ? &encoding
                                       : *name == "base64"      ? &base64
                                       : *name == "compression" ? &compression
                                       : *name == "connect"     ? &connect
                                                                : nullptr;
    if (slot == nullptr) continue;
    if (*slot) return Error(Code::invalid_argument, "the query gives '" + *name + "' twice");
    *slot = std::move(*value);
  }
  if (connect && *connect != "v1") {
    return Error(Code::invalid_argument, "the query's connect must be v1, got '" + connect->substr(0, 32) + "'");
  }
  GetQuery out;
  if (!encoding || (*encoding != "proto" && *encoding != "json")) {
    return Error(Code::unimplemented,
                 encoding ? "the query's encoding '" + encoding->substr(0, 32) + "' is not supported; use proto or json"
                          : std::string("a GET call names its message's encoding in the query: encoding=proto or "
                                        "encoding=json"));
  }
  out.encoding = *encoding == "json" ? Encoding::json : Encoding::proto;
  // The protocol makes message required, as connect-go holds it; an
  // empty one (message=) is the empty request.
  if (!message) {
    return Error(Code::invalid_argument,
                 "a GET call carries its request in the query's message parameter, and this query has none "
                 "(message= for the empty message)");
  }
  // "Other values for the base64 parameter will simply be ignored" (the
  // Connect protocol): only 1 means base64.
  if (base64 && *base64 == "1") {
    auto decoded = security::detail::base64url_decode(*message);
    if (!decoded) return Error(Code::invalid_argument, "the query's message is not URL-safe base64 (base64=1)");
    message = std::move(decoded);
  }
  out.message = std::move(*message);
  if (compression && *compression != "identity") out.compression = std::move(*compression);
  return out;
}

namespace {

// The Connect error body as a protobuf message, so libprotobuf prints and
// parses it (escaping, field order) instead of hand-written JSON. Detail
// values stay strings: Connect sends them as unpadded base64.
struct ErrorBodyTypes {
  pb::DescriptorPool pool;
  pb::DynamicMessageFactory factory{&pool};
  const pb::Descriptor* body = nullptr;
  const pb::Descriptor* detail = nullptr;
  const pb::Message* prototype = nullptr;  // of ErrorBody; New() is thread-safe

  ErrorBodyTypes() {
    pb::FileDescriptorProto file;
    file.set_name("dispatch/connect_error.proto");
    file.set_package("dispatch.connect");
    file.set_syntax("proto3");
    auto add_field = [](pb::DescriptorProto* m, const char* name, int number, bool repeated_message) {
      auto* f = m->add_field();
      f->set_name(name);
      f->set_json_name(name);
      f->set_number(number);
      if (repeated_message) {
        f->set_label(pb::FieldDescriptorProto::LABEL_REPEATED);
        f->set_type(pb::FieldDescriptorProto::TYPE_MESSAGE);
        f->set_type_name(".dispatch.connect.ErrorDetail");
      } else {
        f->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
        f->set_type(pb::FieldDescriptorProto::TYPE_STRING);
      }
    };
    auto* d = file.add_message_type();
    d->set_name("ErrorDetail");
    add_field(d, "type", 1, false);
    add_field(d, "value", 2, false);
    auto* b = file.add_message_type();
    b->set_name("ErrorBody");
    add_field(b, "code", 1, false);
    add_field(b, "message", 2, false);
    add_field(b, "details", 3, true);
    pool.BuildFile(file);
    body = pool.FindMessageTypeByName("dispatch.connect.ErrorBody");
    detail = pool.FindMessageTypeByName("dispatch.connect.ErrorDetail");
    prototype = factory.GetPrototype(body);
  }
};

const ErrorBodyTypes& error_body_types() {
  static const ErrorBodyTypes types;  // immutable after construction
  return types;
}

}  // namespace

// Error messages may quote request bytes (a Content-Type, a path) and JSON
// strings must be UTF-8: invalid text is shown with its bytes >= 0x80 as
// \xNN, so the body still parses and the client still sees the right code.
static std::string utf8_or_escaped(std::string_view text) {
  if (wire::is_valid_utf8(text)) return std::string(text);
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() + 16);
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x80) {
      out.push_back(c);
    } else {
      out.append("\\x").push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    }
  }
  return out;
}

std::string error_to_json(const Error& error) {
  const ErrorBodyTypes& t = error_body_types();
  std::unique_ptr<pb::Message> body(t.prototype->New());
  const pb::Reflection* r = body->GetReflection();
  r->SetString(body.get(), t.body->field(0), std::string(code_name(error.code())));
  r->SetString(body.get(), t.body->field(1), utf8_or_escaped(error.message()));
  for (const ErrorDetail& detail : error.details()) {
    pb::Message* d = r->AddMessage(body.get(), t.body->field(2));
    std::string encoded;
    pb::Base64Escape(reinterpret_cast<const unsigned char*>(detail.value.data()),
                     static_cast<int>(detail.value.size()), &encoded, /*do_padding=*/false);
    d->GetReflection()->SetString(d, t.detail->field(0), utf8_or_escaped(detail.type));
    d->GetReflection()->SetString(d, t.detail->field(1), encoded);
  }
  std::string json;
  // A message of strings always prints; a failure here is a broken invariant.
  (void)pb::util::MessageToJsonString(*body, &json);
  return json;
}

Error error_from_json(std::string_view body, int http_status) {
  const Code fallback = code_from_http_status(http_status);
  auto not_connect = [&] {
    std::string snippet(body.substr(0, 200));
    return Error(fallback, "HTTP " + std::to_string(http_status) +
                               (snippet.empty() ? std::string(" with an empty body")
                                                : " with a body that is not a Connect error: " + snippet));
  };
  const ErrorBodyTypes& t = error_body_types();
  std::unique_ptr<pb::Message> parsed(t.prototype->New());
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // e.g. a detail's "debug"
  if (!pb::util::JsonStringToMessage(std::string(body), parsed.get(), options).ok()) return not_connect();
  const pb::Reflection* r = parsed->GetReflection();
  const std::string code_text = r->GetString(*parsed, t.body->field(0));
  if (code_text.empty()) return not_connect();
  // A code the protocol does not have ("ok" is none): the HTTP status's,
  // as the Connect protocol tells clients and connect-go and connect-es do.
  const std::optional<Code> named = code_from_name(code_text);
  const Code code = named && *named != Code::ok ? *named : fallback;
  std::vector<ErrorDetail> details;
  for (int i = 0; i < r->FieldSize(*parsed, t.body->field(2)); ++i) {
    const pb::Message& d = r->GetRepeatedMessage(*parsed, t.body->field(2), i);
    ErrorDetail detail{d.GetReflection()->GetString(d, t.detail->field(0)), {}};
    pb::Base64Unescape(d.GetReflection()->GetString(d, t.detail->field(1)), &detail.value);
    details.push_back(std::move(detail));
  }
  return Error(code, r->GetString(*parsed, t.body->field(1)), std::move(details));
}

namespace {

// protobuf's JSON conversion asks its TypeResolver for every message and enum
// type it meets, on every call, and the descriptor pool's resolver builds each
// google.protobuf.Type afresh from the descriptors (options included). The
// types of one pool never change, so each is built once here and copied out
// afterwards. A failed lookup is not kept: it is answered as the pool answers.
class CachingTypeResolver final : public pb::util::TypeResolver {
 public:
  explicit CachingTypeResolver(std::unique_ptr<pb::util::TypeResolver> inner) : inner_(std::move(inner)) {}

  pb::util::Status ResolveMessageType(const std::string& type_url, pb::Type* type) override {
    return resolve(messages_, type_url, type,
                   [this](const std::string& url, pb::Type* t) { return inner_->ResolveMessageType(url, t); });
  }
  pb::util::Status ResolveEnumType(const std::string& type_url, pb::Enum* type) override {
    return resolve(enums_, type_url, type,
                   [this](const std::string& url, pb::Enum* t) { return inner_->ResolveEnumType(url, t); });
  }

 private:
  template <typename T, typename Build>
  pb::util::Status resolve(std::unordered_map<std::string, std::unique_ptr<const T>>& cache,
                           const std::string& type_url, T* out, Build build) {
    {
      std::shared_lock<std::shared_mutex> lock(mutex_);
      if (auto it = cache.find(type_url); it != cache.end()) {
        *out = *it->second;
        return pb::util::Status();
      }
    }
    auto built = std::make_unique<T>();
    pb::util::Status status = build(type_url, built.get());
    if (!status.ok()) return status;
    *out = *built;
    std::unique_lock<std::shared_mutex> lock(mutex_);
    cache.emplace(type_url, std::move(built));  // a racing builder's copy is as good
    return status;
  }

  const std::unique_ptr<pb::util::TypeResolver> inner_;
  std::shared_mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<const pb::Type>> messages_;
  std::unordered_map<std::string, std::unique_ptr<const pb::Enum>> enums_;
};

}  // namespace

struct JsonCodec::State {
  pb::DescriptorPool pool;
  std::unique_ptr<pb::util::TypeResolver> resolver;
  // Plans for the service's own messages: most calls never reach the
  // resolver (detail::JsonFast says what it declines).
  std::unique_ptr<detail::JsonFast> fast;
  // What to_json's long way parses bytes into first (thread-safe).
  pb::DynamicMessageFactory factory{&pool};
};

JsonCodec::JsonCodec(std::unique_ptr<State> state) : state_(std::move(state)) {}
JsonCodec::~JsonCodec() = default;

Result<std::unique_ptr<JsonCodec>> JsonCodec::create(std::string_view file_descriptor) {
  pb::FileDescriptorProto file;
  if (file_descriptor.empty() ||
      !file.ParseFromArray(file_descriptor.data(), static_cast<int>(file_descriptor.size()))) {
    return Error(Code::invalid_argument, "the service's embedded file descriptor is missing or does not parse");
  }
  auto state = std::make_unique<State>();
  std::set<std::string> added;
  for (const std::string& dependency : file.dependency()) {
    std::string problem;
    if (!add_with_dependencies(dependency, state->pool, added, problem)) {
      return Error(Code::invalid_argument, "file descriptor '" + file.name() + "': " + problem);
    }
  }
  const pb::FileDescriptor* built = state->pool.BuildFile(file);
  if (built == nullptr) {
    return Error(Code::invalid_argument,
                 "file descriptor '" + file.name() + "' does not build (invalid or inconsistent)");
  }
  state->fast = std::make_unique<detail::JsonFast>(*built);
  state->resolver = std::make_unique<CachingTypeResolver>(std::unique_ptr<pb::util::TypeResolver>(
      pb::util::NewTypeResolverForDescriptorPool(std::string(kTypeUrlPrefix), &state->pool)));
  return std::unique_ptr<JsonCodec>(new JsonCodec(std::move(state)));
}

Result<std::string> JsonCodec::to_binary(std::string_view type, std::string_view json) const {
  if (auto fast = state_->fast->to_binary(type, json)) return std::move(*fast);
  const pb::Descriptor* descriptor = state_->pool.FindMessageTypeByName(std::string(type));
  if (descriptor == nullptr) {
    return Error(Code::internal, "message type '" + std::string(type) + "' is not in the service's descriptor");
  }
  // protobuf 3.21's parser takes what is not JSON (a trailing comma,
  // unquoted or single-quoted names) and values of the wrong shape (an
  // object for a list, "01" for a number): held to RFC 8259 and the proto3
  // JSON mapping first, as connect-go and connect-es are.
  if (auto wrong = detail::json_request_problem(json, *descriptor)) {
    return Error(Code::invalid_argument, "request body is not valid JSON for " + std::string(type) + ": " + *wrong);
  }
  std::string url = std::string(kTypeUrlPrefix) + "/" + std::string(type);
  std::string binary;
  pb::util::JsonParseOptions options;
  // Fields (and enum names) this side does not know are skipped, as the
  // binary decoder skips unknown fields and as connect-go and connect-es
  // read JSON: a client built from a newer .proto can call an older server.
  options.ignore_unknown_fields = true;
  auto status = pb::util::JsonToBinaryString(state_->resolver.get(), url, std::string(json), &binary,
                                             options);
  if (!status.ok()) {
    return Error(Code::invalid_argument,
                 "request body is not valid JSON for " + std::string(type) + ": " + status_message(status));
  }
  return binary;
}

const pb::DescriptorPool& JsonCodec::pool() const { return state_->pool; }

Result<std::string> JsonCodec::to_json(std::string_view type, std::string_view binary, bool print_defaults) const {
  if (auto fast = state_->fast->to_json(type, binary, print_defaults)) return std::move(*fast);
  const pb::Descriptor* descriptor = state_->pool.FindMessageTypeByName(std::string(type));
  if (descriptor == nullptr) {
    return Error(Code::internal, "message type '" + std::string(type) + "' is not in the service's descriptor");
  }
  // protobuf's printer reads the wire bytes as they come and trusts them:
  // on damaged ones it prints made-up values, or never returns (a packed
  // list whose length runs past the end). So the bytes are parsed first,
  // and the printer reads the message's own encoding of what they held.
  std::unique_ptr<pb::Message> message(state_->factory.GetPrototype(descriptor)->New());
  bool parsed = false;
  {
    // The error below says it; protobuf would also log invalid UTF-8 in a
    // string to stderr, once per bad message anyone sends.
    const pb::LogSilencer quiet;
    parsed = message->ParseFromArray(binary.data(), static_cast<int>(binary.size()));
  }
  if (!parsed) {
    return Error(Code::internal, "cannot print " + std::string(type) + " as JSON: the " +
                                     std::to_string(binary.size()) + " bytes given are not a valid " +
                                     std::string(type) + " in the protobuf wire format");
  }
  message->DiscardUnknownFields();
  std::string url = std::string(kTypeUrlPrefix) + "/" + std::string(type);
  std::string json;
  pb::util::JsonPrintOptions options;
  options.always_print_primitive_fields = print_defaults;
  auto status = pb::util::BinaryToJsonString(state_->resolver.get(), url, message->SerializeAsString(), &json, options);
  if (!status.ok()) {
    return Error(Code::internal,
                 "cannot print " + std::string(type) + " as JSON: " + status_message(status));
  }
  return json;
}

}  // namespace dispatch::connect
