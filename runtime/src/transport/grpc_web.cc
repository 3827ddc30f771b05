// gRPC-Web (PROTOCOL-WEB.md), over HTTP/1.1 and HTTP/2 alike (grpc_calls.cc
// hands HTTP/2 streams of it here whole): the request body is the gRPC
// framed message (base64 for application/grpc-web-text), the response body
// the framed answer followed by a trailer frame (flag 0x80) carrying
// grpc-status and grpc-message, since a browser can read no HTTP trailers.
// An error is a trailers-only response: HTTP 200 with grpc-status in the
// headers and no body. "+json" messages are protobuf's JSON mapping,
// converted as Connect's JSON is. Plain gRPC (application/grpc) over
// HTTP/1.1 needs HTTP/2 and is refused with 415 here.
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>

#include <deque>

#include "transport/grpc_calls.h"
#include "transport/grpc_framing.h"
#include "transport/grpc_services.h"
#include "transport/request_handler.h"

namespace dispatch::transport {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

std::string_view view(beast::string_view s) { return {s.data(), s.size()}; }

Response web_response(bool keep_alive, grpc::ContentType content_type) {
  Response r;
  r.result(http::status::ok);
  r.version(11);
  r.keep_alive(keep_alive);
  const std::string_view type = grpc::content_type_of(content_type.variant, content_type.codec);
  r.set(http::field::content_type, beast::string_view(type.data(), type.size()));
  r.set("grpc-accept-encoding", beast::string_view(grpc::kAcceptEncoding.data(), grpc::kAcceptEncoding.size()));
  return r;
}

Response web_error(const Request& req, grpc::ContentType content_type, const Error& error) {
  Response r = web_response(req.keep_alive(), content_type);
  for (const auto& [name, value] : grpc::status_trailers(&error)) r.set(name, value);
  r.prepare_payload();
  return r;
}

}  // namespace

Response RequestHandler::serve_grpc_web(Request& req, Clock::time_point received) const {
  const std::string_view target = view(req.target());
  const std::string_view path = target.substr(0, target.find('?'));
  const std::string_view content_type = view(req[http::field::content_type]);
  const auto type = grpc::parse_content_type(content_type);
  auto refuse_http = [&](http::status status, Error error) {
    count_rejected(Protocol::grpc_web, error.code());
    if (options_.logger.enabled(LogLevel::warn)) {
      options_.logger.log(LogLevel::warn, "rejected " + std::string(req.method_string()) + " " +
                                              std::string(target.substr(0, 200)) + ": " +
                                              std::to_string(static_cast<int>(status)) + " " + error.what());
    }
    return error_response(error, status, req.keep_alive());
  };
  if (!type) {
    return refuse_http(http::status::unsupported_media_type,
                       Error(Code::unimplemented, "content type '" + std::string(content_type.substr(0, 100)) +
                                                      "' is not supported; gRPC-Web bodies are application/"
                                                      "grpc-web[-text][+proto|+json]"));
  }
  if (type->variant == grpc::Variant::grpc) {
    return refuse_http(http::status::unsupported_media_type,
                       Error(Code::unimplemented,
                             "gRPC needs HTTP/2 (cleartext, prior knowledge, on this same port); over HTTP/1.1 "
                             "send application/grpc-web or use Connect (application/proto)"));
  }
  if (req.method() != http::verb::post) {
    return refuse_http(http::status::method_not_allowed,
                       Error(Code::unimplemented, std::string(req.method_string()) + " " + std::string(path) +
                                                      ": gRPC-Web calls are POST requests"));
  }
  auto refuse = [&](const Error& error) {
    count_rejected(Protocol::grpc_web, error.code());
    if (options_.logger.enabled(LogLevel::warn)) {
      options_.logger.log(LogLevel::warn, "rejected gRPC-Web " + std::string(path.substr(0, 200)) + ": " + error.what());
    }
    return web_error(req, *type, error);
  };
  auto header = [&req](std::string_view name) -> std::optional<std::string_view> {
    auto it = req.find(beast::string_view(name.data(), name.size()));
    if (it == req.end()) return std::nullopt;
    return view(it->value());
  };
  auto visit_headers = [&req](const std::function<void(std::string_view, std::string_view)>& f) {
    for (const auto& field : req) f(view(field.name_string()), view(field.value()));
  };
  const GrpcServices::Method* builtin = grpc_services_->find(path);
  const Method* method = builtin ? nullptr : table_.find(path);
  if (builtin == nullptr && method == nullptr) {
    return refuse(Error(Code::unimplemented, "no method is served at " + std::string(path.substr(0, 200))));
  }
  auto checked = read_grpc_headers(header);
  if (!checked.ok()) return refuse(checked.error());
  const bool json = type->codec == grpc::Codec::json;
  if (builtin != nullptr && json) {
    return refuse(Error(Code::unimplemented, std::string(path.substr(0, 200)) +
                                                 " is served in protobuf only (application/grpc-web+proto)"));
  }
  // Full-body compression (PROTOCOL-WEB.md: "supported ... using standard
  // Content-Encoding headers"): a gzip body is inflated, within the body
  // limit, before its frames are read; another coding is refused naming
  // the supported ones. A signature covers the bytes as sent.
  auto inflated = decoded_body(req);
  if (!inflated.ok()) return refuse(inflated.error());
  const std::string& plain = *inflated ? **inflated : req.body();
  std::string framed;
  if (type->variant == grpc::Variant::web_text) {
    auto decoded = grpc::decode_web_text(plain);
    if (!decoded.ok()) return refuse(decoded.error());
    framed = std::move(*decoded);
  } else {
    framed = plain;
  }
  grpc::MessageReader reader(options_.max_body_bytes);
  reader.append(framed);
  std::vector<std::string> messages;
  for (;;) {
    auto next = reader.next(checked->encoding);
    if (!next.ok()) return refuse(next.error());
    if (!*next) break;
    messages.push_back(std::move(**next));
  }
  if (reader.pending() != 0) return refuse(Error(Code::internal, "the request body ends inside a message"));

  std::vector<std::string> answers;
  ResponseHeaders answer_headers;  // what the function adds to its answer
  if (builtin != nullptr) {
    if (builtin->kind == GrpcServices::Kind::each_message && (options_.authenticate || options_.bearer_keys)) {
      HeaderRequestInfo info(header, visit_headers);
      info.method = "POST";
      info.path = path;
      info.authority = view(req[http::field::host]);
      info.content_type = content_type;
      security::HttpRequestView request;
      request.method = "POST";
      request.target = target;
      request.authority = info.authority;
      request.header = header;
      auto allowed = admit_headers(info, request);
      if (!allowed.ok()) return refuse(allowed.error());
    }
    if (builtin->kind != GrpcServices::Kind::each_message && messages.size() != 1) {
      return refuse(Error(Code::internal, "a unary call carries one request message; " +
                                              std::to_string(messages.size()) + " came"));
    }
    // Over HTTP/1.1 nothing can be held open: Watch answers once.
    for (const std::string& m : messages) {
      auto a = grpc_services_->answer(*builtin, m);
      if (!a.ok()) return refuse(a.error());
      answers.push_back(std::move(*a));
    }
  } else {
    if (messages.size() != 1) {
      return refuse(Error(Code::internal, "a unary call carries one request message; " +
                                              std::to_string(messages.size()) + " came"));
    }
    if (options_.authenticate || options_.verifier || options_.bearer_keys) {
      HeaderRequestInfo info(header, visit_headers);
      info.method = "POST";
      info.path = path;
      info.authority = view(req[http::field::host]);
      info.content_type = content_type;
      info.body = req.body();
      security::HttpRequestView request;
      request.method = "POST";
      request.target = target;
      request.authority = info.authority;
      request.header = header;
      request.body = req.body();
      auto allowed = admit(info, request);
      if (!allowed.ok()) return refuse(allowed.error());
    }
    if (json) {
      auto binary = request_from_json(*method, messages[0]);
      if (!binary.ok()) return refuse(binary.error());
      messages[0] = std::move(*binary);
    }
    CallContext context = context_for(*method, header("traceparent"), header("tracestate"));
    if (checked->timeout) context.deadline = received + *checked->timeout;
    context.attempt = checked->attempt;
    const BeastRequestHeaders request_headers(req);
    context.request_headers = &request_headers;
    context.response_headers = &answer_headers;
    auto result = run(*method, messages[0], context, received, Protocol::grpc_web);
    if (result.ok() && json) result = reply_to_json(*method, *result);
    if (!result.ok()) {
      Response refused = web_error(req, *type, result.error());
      add_function_headers(refused, answer_headers);
      return refused;
    }
    answers.push_back(std::move(*result));
  }
  Response r = web_response(req.keep_alive(), *type);
  add_function_headers(r, answer_headers);
  std::string body;
  for (const std::string& a : answers) {
    body += checked->gzip_reply ? grpc::frame_message(grpc::gzip_compress(a), true) : grpc::frame_message(a);
  }
  body += grpc::web_trailer_frame(grpc::status_trailers(nullptr));
  if (checked->gzip_reply) r.set("grpc-encoding", "gzip");
  r.body() = type->variant == grpc::Variant::web_text ? grpc::encode_web_text(body) : std::move(body);
  r.prepare_payload();
  return r;
}

}  // namespace dispatch::transport
