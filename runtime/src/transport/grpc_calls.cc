// Calls over HTTP/2: request events in, calls run, answers out (see the
// header). PROTOCOL-HTTP2.md: a gRPC request is POST with content-type
// application/grpc[+proto]; everything about it, errors included, is HTTP
// 200 with the outcome in grpc-status. Any other content type is an HTTP
// request like those HTTP/1.1 brings (Connect's unary calls are defined
// over either version), answered with its own HTTP status.
#include "transport/grpc_calls.h"

#include <array>
#include <deque>

#include "transport/http_text.h"

namespace dispatch::transport {
namespace {

using Clock = std::chrono::steady_clock;

// A trailers-only answer (an error, no message) in the request's codec:
// a client that asked for application/grpc+json may refuse any other
// content type before it reads grpc-status.
Http2Headers trailers_only(const Error& error, grpc::Codec codec) {
  Http2Headers h{{":status", "200"}, {"content-type", std::string(grpc::content_type_of(grpc::Variant::grpc, codec))}};
  for (auto& t : grpc::status_trailers(&error)) h.push_back(std::move(t));
  return h;
}

// A gRPC request refused before its function ran, on whichever thread
// refuses it: counted, logged (warn), and its trailers-only answer.
Http2Headers rejected(const RequestHandler& handler, std::string_view path, grpc::Codec codec, const Error& error) {
  handler.count_rejected(Protocol::grpc, error.code());
  const Logger& logger = handler.options().logger;
  if (logger.enabled(LogLevel::warn)) {
    logger.log(LogLevel::warn, "rejected gRPC " + std::string(path.substr(0, 200)) + ": " + error.what());
  }
  return trailers_only(error, codec);
}

// grpc-status 0, the trailers of every answer that succeeded.
constexpr Http2Field kOkTrailers[] = {{"grpc-status", "0"}};

// Fields that are about one HTTP/1.1 connection, which HTTP/2 forbids in
// a message (RFC 9113, 8.2.2).
bool connection_specific(std::string_view lower_name) {
  for (std::string_view f : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}) {
    if (lower_name == f) return true;
  }
  return false;
}

}  // namespace

GrpcAnswer http2_answer(Response response) {
  GrpcAnswer a;
  a.http = true;
  a.headers.emplace_back(":status", std::to_string(response.result_int()));
  for (const auto& field : response) {
    std::string name = lowercase_ascii(std::string(field.name_string()));
    if (connection_specific(name)) continue;
    a.headers.emplace_back(std::move(name), std::string(field.value()));
  }
  a.body = std::move(response.body());
  return a;
}

Result<GrpcRequestHeaders> read_grpc_headers(const HeaderLookup& header) {
  GrpcRequestHeaders out;
  auto encoding = grpc::compression_from_header(header("grpc-encoding"));
  if (!encoding.ok()) return std::move(encoding).error();
  out.encoding = *encoding;
  out.gzip_reply = out.encoding == grpc::Compression::gzip && grpc::accepts_gzip(header("grpc-accept-encoding"));
  if (auto t = header("grpc-timeout")) {
    auto timeout = grpc::parse_timeout(*t);
    if (!timeout.ok()) return std::move(timeout).error();
    out.timeout = *timeout;
  }
  if (auto a = header("dispatch-attempt")) {
    auto attempt = connect::parse_attempt(*a);
    if (!attempt.ok()) return std::move(attempt).error();
    out.attempt = *attempt;
  }
  return out;
}

GrpcCalls::GrpcCalls(Http2Session& session, const RequestHandler& handler, Host& host)
    : session_(session), handler_(handler), host_(host) {}

std::optional<std::string_view> GrpcCalls::header(const Stream& s, std::string_view name) const {
  for (const auto& [n, v] : *s.headers) {
    if (n == name) return std::string_view(v);
  }
  return std::nullopt;
}

Http2Fields GrpcCalls::response_headers(const Stream& s) {
  // One block per codec and reply encoding, built once: the views point
  // at string literals (content_type_of's and kAcceptEncoding).
  struct Block {
    std::array<Http2Field, 4> fields;
    std::size_t size;
  };
  static const std::array<Block, 4> blocks = [] {
    std::array<Block, 4> out{};
    const grpc::Codec codecs[] = {grpc::Codec::proto, grpc::Codec::json};
    for (std::size_t c = 0; c < 2; ++c) {
      for (std::size_t gzip = 0; gzip < 2; ++gzip) {
        Block& b = out[c * 2 + gzip];
        b.size = 0;
        b.fields[b.size++] = {":status", "200"};
        b.fields[b.size++] = {"content-type", grpc::content_type_of(grpc::Variant::grpc, codecs[c])};
        if (gzip) b.fields[b.size++] = {"grpc-encoding", "gzip"};
        b.fields[b.size++] = {"grpc-accept-encoding", grpc::kAcceptEncoding};
      }
    }
    return out;
  }();
  const Block& b = blocks[(s.codec == grpc::Codec::json ? 2 : 0) + (s.grpc.gzip_reply ? 1 : 0)];
  return Http2Fields(b.fields.data(), b.size);
}

void GrpcCalls::refuse(int32_t id, Stream& s, const Error& error) {
  if (s.http) {
    handler_.count_rejected(s.http_protocol, error.code());
    s.answered = true;
    // A request not received in time is 408, as over HTTP/1.1.
    const auto status = error.code() == Code::deadline_exceeded
                            ? boost::beast::http::status::request_timeout
                            : static_cast<boost::beast::http::status>(code_to_http_status(error.code()));
    GrpcAnswer a = http2_answer(error_response(error, status, true));
    session_.respond(id, a.headers, std::move(a.body), {});
    return;
  }
  Http2Headers h = rejected(handler_, s.path, s.codec, error);
  // An unsupported grpc-encoding is answered with those this side takes.
  if (error.code() == Code::unimplemented) h.emplace_back("grpc-accept-encoding", std::string(grpc::kAcceptEncoding));
  s.answered = true;
  session_.respond(id, h, {}, {});
}

void GrpcCalls::on_request(int32_t id, Http2Headers headers) {
  Stream& s = streams_[id];
  s.headers = std::make_shared<const Http2Headers>(std::move(headers));
  s.received = Clock::now();
  s.reader = grpc::MessageReader(handler_.options().max_body_bytes);
  s.path = header(s, ":path").value_or("");
  const std::string_view method = header(s, ":method").value_or("");
  const std::string_view content_type = header(s, "content-type").value_or("");
  const auto type = grpc::parse_content_type(content_type);
  if (running_ >= handler_.options().max_concurrent_streams) {
    // Streams reset while their calls still run (a rapid-reset flood):
    // refused until some finish.
    s.answered = true;
    session_.reset(id, 7 /* REFUSED_STREAM */);
    return;
  }
  if (!type || type->variant != grpc::Variant::grpc) {
    // Not gRPC: an HTTP request (a Connect call, an event, a probe), read
    // whole and answered as HTTP/1.1 would answer it, its own HTTP status
    // included, so no HTTP/2 client mistakes an error for success. gRPC-Web
    // too: its trailers go in the body (PROTOCOL-WEB.md), whatever the HTTP
    // version, since a browser's fetch cannot read HTTP/2 trailers.
    s.http = true;
    if (type) s.http_protocol = Protocol::grpc_web;
    return;
  }
  s.codec = type->codec;
  s.builtin = handler_.grpc_services().find(s.path);
  s.method = s.builtin ? nullptr : handler_.find(s.path);
  if (method != "POST") {
    return refuse(id, s, Error(Code::unimplemented, std::string(method) + " " + std::string(s.path) + ": gRPC calls are POST"));
  }
  if (s.method == nullptr && s.builtin == nullptr) {
    return refuse(id, s, Error(Code::unimplemented, "no method is served at " + std::string(s.path.substr(0, 200))));
  }
  auto checked = read_grpc_headers([&](std::string_view name) { return header(s, name); });
  if (!checked.ok()) return refuse(id, s, checked.error());
  s.grpc = *checked;
  if (s.builtin != nullptr && s.codec == grpc::Codec::json) {
    return refuse(id, s, Error(Code::unimplemented, std::string(s.path.substr(0, 200)) +
                                                        " is served in protobuf only (application/grpc)"));
  }
  if (s.builtin != nullptr) {
    // Health answers anyone (probes carry no keys); reflection, which shows
    // the API, asks for what the headers can prove: the authenticate hook
    // and the bearer keys (a streaming body cannot be signed up front).
    if (s.builtin->kind == GrpcServices::Kind::each_message) {
      const auto& o = handler_.options();
      if (o.authenticate || o.bearer_keys) {
        HeaderRequestInfo info([&](std::string_view name) { return header(s, name); },
                               [&](const std::function<void(std::string_view, std::string_view)>& f) {
                                 for (const auto& [name, value] : *s.headers) f(name, value);
                               });
        info.method = method;
        info.path = s.path;
        info.authority = header(s, ":authority").value_or("");
        info.content_type = content_type;
        security::HttpRequestView view;
        view.method = method;
        view.target = s.path;
        view.authority = info.authority;
        view.header = [&](std::string_view name) { return header(s, name); };
        auto allowed = handler_.admit_headers(info, view);
        if (!allowed.ok()) return refuse(id, s, allowed.error());
      }
    }
  }
}

void GrpcCalls::on_data(int32_t id, std::string_view data) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return session_.release(id, data.size());
  Stream& s = it->second;
  if (s.answered) return session_.release(id, data.size());
  if (s.http) {
    if (s.body.size() + data.size() > handler_.options().max_body_bytes) {
      // 413, as over HTTP/1.1 (the same answer: read_error_response's).
      session_.release(id, s.body.size() + data.size());
      s.body = std::string();
      handler_.count_rejected(s.http_protocol, Code::resource_exhausted);
      s.answered = true;
      GrpcAnswer a = http2_answer(*read_error_response(boost::beast::http::error::body_limit, handler_.options()));
      return session_.respond(id, a.headers, std::move(a.body), {});
    }
    s.body.append(data.data(), data.size());
    return;
  }
  if (s.builtin != nullptr) {
    s.reader.append(data);
    session_.release(id, data.size());
    return feed_builtin(id, s);
  }
  // A unary request is one message: its body may not exceed the limit by
  // more than the 5-byte prefix.
  if (s.body.size() + data.size() > handler_.options().max_body_bytes + 5) {
    return refuse(id, s,
                  Error(Code::resource_exhausted, "request message exceeds the server's limit of " +
                                                      std::to_string(handler_.options().max_body_bytes) + " bytes"));
  }
  s.body.append(data.data(), data.size());
}

void GrpcCalls::feed_builtin(int32_t id, Stream& s) {
  while (!s.answered) {
    auto next = s.reader.next(s.grpc.encoding);
    if (!next.ok()) return refuse(id, s, next.error());
    if (!*next) return;
    auto answer = handler_.grpc_services().answer(*s.builtin, **next);
    if (!answer.ok()) return refuse(id, s, answer.error());
    std::string framed;
    if (s.grpc.gzip_reply) {
      framed = grpc::frame_message(grpc::gzip_compress(*answer), true);
    } else {
      framed = grpc::frame_message(*answer);
    }
    if (!s.started) {
      s.started = true;
      session_.respond_fixed(id, response_headers(s), std::move(framed), {}, /*more=*/true);
    } else {
      session_.send_data(id, std::move(framed));
    }
    if (s.builtin->kind != GrpcServices::Kind::each_message) {
      // Check answers once; Watch holds the stream until the client goes
      // or the server drains.
      if (s.builtin->kind == GrpcServices::Kind::unary) {
        s.answered = true;
        session_.finish_fixed(id, kOkTrailers);
      } else if (!s.held) {
        s.held = true;
        ++held_;
      }
      return;
    }
  }
}

void GrpcCalls::on_end(int32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  Stream& s = it->second;
  if (s.answered) return;
  if (s.http) return start_http(id, s);
  if (s.builtin != nullptr) {
    if (s.reader.pending() != 0) {
      return refuse(id, s, Error(Code::internal, "the request stream ended inside a message"));
    }
    if (s.builtin->kind == GrpcServices::Kind::each_message) {
      s.answered = true;
      if (s.started) return session_.finish_fixed(id, kOkTrailers);
      return session_.respond_fixed(id, response_headers(s), {}, kOkTrailers);
    }
    if (!s.started) return refuse(id, s, Error(Code::invalid_argument, "the request carries no message"));
    return;
  }
  start_unary(id, s);
}

void GrpcCalls::start_unary(int32_t id, Stream& s) {
  std::string inflated;
  auto message = grpc::single_message(s.body, s.grpc.encoding, handler_.options().max_body_bytes, inflated);
  if (!message.ok()) return refuse(id, s, message.error());
  const Method& method = *s.method;
  const auto& o = handler_.options();
  if (o.authenticate || o.verifier || o.bearer_keys) {
    std::deque<std::string> combined;
    auto lookup = [&s, &combined](std::string_view name) -> std::optional<std::string_view> {
      std::optional<std::string_view> found;
      std::string joined;
      int count = 0;
      for (const auto& [n, v] : *s.headers) {
        if (n != name) continue;
        if (count++ == 0) {
          found = v;
        } else {
          if (joined.empty()) joined = std::string(*found);
          joined += ", " + v;
        }
      }
      if (count > 1) return std::string_view(combined.emplace_back(std::move(joined)));
      return found;
    };
    HeaderRequestInfo info(lookup, [&](const std::function<void(std::string_view, std::string_view)>& f) {
      for (const auto& [name, value] : *s.headers) f(name, value);
    });
    info.method = "POST";
    info.path = s.path;
    info.authority = lookup(":authority").value_or("");
    info.content_type = lookup("content-type").value_or("");
    info.body = s.body;
    security::HttpRequestView view;
    view.method = "POST";
    view.target = s.path;
    view.authority = info.authority;
    view.header = lookup;
    view.body = s.body;
    auto allowed = handler_.admit(info, view);
    if (!allowed.ok()) return refuse(id, s, allowed.error());
  }
  CallContext context = handler_.context_for(method, header(s, "traceparent"), header(s, "tracestate"));
  if (s.grpc.timeout) context.deadline = s.received + *s.grpc.timeout;
  context.attempt = s.grpc.attempt;
  s.answered = true;
  ++running_;
  session_.release(id, s.body.size());
  // The call owns the request's bytes: the body itself when the message is
  // a view of it (no copy), else the decompressed message.
  const bool compressed = message->data() == inflated.data();
  const std::size_t skip = compressed ? 0 : static_cast<std::size_t>(message->data() - s.body.data());
  std::string request = compressed ? std::move(inflated) : std::move(s.body);
  s.body = std::string();
  const bool gzip = s.grpc.gzip_reply;
  const grpc::Codec codec = s.codec;
  const RequestHandler& handler = handler_;
  const auto received = s.received;
  // A call placed by the function it runs (Method::runs: the Dispatch
  // protocol's Run), read from the message while it is at hand.
  const RequestHandler::Place place =
      handler_.place(s.codec == grpc::Codec::proto ? handler_.target(method, *message) : method);
  host_.run(id, place,
            [&handler, &method, request = std::move(request), skip, context = std::move(context), received, gzip,
             codec, headers = s.headers]() mutable -> GrpcAnswer {
              const RequestHeaderList request_headers(*headers);
              ResponseHeaders answer_headers;
              context.request_headers = &request_headers;
              context.response_headers = &answer_headers;
              GrpcAnswer answer = answer_call(handler, method, std::string_view(request).substr(skip), context,
                                              received, gzip, codec);
              // The function's headers go in the answer's first block: the
              // response headers, or the trailers-only block of an error.
              for (auto& line : answer_headers.lines()) answer.headers.push_back(line);
              return answer;
            });
}

GrpcAnswer GrpcCalls::answer_call(const RequestHandler& handler, const Method& method, std::string_view message,
                                  const CallContext& context, Clock::time_point received, bool gzip,
                                  grpc::Codec codec) {
  const bool json = codec == grpc::Codec::json;
  // A JSON message becomes the protobuf bytes the function's decoder reads,
  // on the call's thread, as a Connect JSON request's do.
  std::string converted;
  if (json) {
    auto binary = handler.request_from_json(method, message);
    if (!binary.ok()) return GrpcAnswer{false, {}, rejected(handler, method.path, codec, binary.error())};
    converted = std::move(*binary);
    message = converted;
  }
  auto result = handler.run(method, message, context, received, Protocol::grpc);
  if (result.ok() && json) result = handler.reply_to_json(method, *result);
  if (!result.ok()) return GrpcAnswer{false, {}, trailers_only(result.error(), codec)};
  std::string body = gzip ? grpc::frame_message(grpc::gzip_compress(*result), true) : grpc::frame_message(*result);
  return GrpcAnswer{true, std::move(body), {}};
}

void GrpcCalls::start_http(int32_t id, Stream& s) {
  namespace http = boost::beast::http;
  Request req;
  try {
    const std::string_view method = header(s, ":method").value_or("");
    const http::verb verb = http::string_to_verb(boost::beast::string_view(method.data(), method.size()));
    if (verb == http::verb::unknown) {
      req.method_string(boost::beast::string_view(method.data(), method.size()));
    } else {
      req.method(verb);
    }
    req.target(boost::beast::string_view(s.path.data(), s.path.size()));
    req.version(11);
    if (auto authority = header(s, ":authority")) {
      req.set(http::field::host, boost::beast::string_view(authority->data(), authority->size()));
    }
    for (const auto& [name, value] : *s.headers) {
      if (name.empty() || name[0] == ':') continue;
      if (name == "host" && req.find(http::field::host) != req.end()) continue;  // :authority wins
      if (connection_specific(name)) continue;
      req.insert(boost::beast::string_view(name.data(), name.size()), value);
    }
  } catch (const std::exception& e) {
    // Beast refuses what HTTP/1.1 could not carry (nghttp2 has checked
    // the fields already, so this is not expected).
    session_.release(id, s.body.size());
    return refuse(id, s, Error(Code::invalid_argument, std::string("the request cannot be read as HTTP: ") + e.what()));
  }
  session_.release(id, s.body.size());
  req.body() = std::move(s.body);
  s.body = std::string();
  if (!req.body().empty() || req.method() == http::verb::post) req.prepare_payload();
  req.keep_alive(true);
  s.answered = true;
  ++running_;
  const RequestHandler& handler = handler_;
  // Who answers, found once for the thread and for serve(); a route that
  // throws here (routes are the user's) is asked again inside serve(),
  // which answers 500, as http1_session.cc does.
  std::optional<RequestHandler::Resolution> resolved;
  try {
    resolved = handler_.resolve(req);
  } catch (...) {
  }
  const auto place = resolved ? handler_.place(*resolved) : RequestHandler::Place::io_thread;
  const auto received = Clock::now();  // the whole request is in (Connect-Timeout-Ms counts from here)
  host_.run(id, place, [&handler, req = std::move(req), resolved, received]() mutable -> GrpcAnswer {
    return http2_answer(handler.serve(req, received, resolved ? &*resolved : nullptr));
  });
}

void GrpcCalls::deliver(int32_t id, GrpcAnswer answer) {
  --running_;
  auto it = streams_.find(id);
  if (it == streams_.end()) return;  // reset while the call ran
  if (answer.http) return session_.respond(id, answer.headers, std::move(answer.body), {});
  if (!answer.ok) return session_.respond(id, answer.headers, {}, {});
  if (answer.headers.empty()) {
    return session_.respond_fixed(id, response_headers(it->second), std::move(answer.body), kOkTrailers);
  }
  // The function added headers: the fixed block, then its lines.
  Http2Headers headers, trailers;
  for (const Http2Field& f : response_headers(it->second)) headers.emplace_back(f.name, f.value);
  for (auto& line : answer.headers) headers.push_back(std::move(line));
  for (const Http2Field& f : kOkTrailers) trailers.emplace_back(f.name, f.value);
  session_.respond(id, headers, std::move(answer.body), std::move(trailers));
}

void GrpcCalls::on_close(int32_t id, uint32_t) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  if (it->second.held) --held_;
  streams_.erase(it);
}

std::optional<Clock::time_point> GrpcCalls::expire_unfinished(Clock::time_point now, std::chrono::milliseconds limit) {
  std::optional<Clock::time_point> next;
  for (auto& [id, s] : streams_) {
    // A reflection stream that has answered once, or a held Watch, is a
    // conversation, not a request on its way.
    if (s.answered || s.started || s.held) continue;
    const auto due = s.received + limit;
    if (now < due) {
      if (!next || due < *next) next = due;
      continue;
    }
    refuse(id, s,
           Error(Code::deadline_exceeded, "request not received within the server's read timeout of " +
                                              std::to_string(limit.count()) + " ms"));
  }
  return next;
}

void GrpcCalls::drain() {
  handler_.grpc_services().set_serving(false);
  const std::string update = grpc::frame_message(handler_.grpc_services().health_message());
  for (auto& [id, s] : streams_) {
    if (!s.held) continue;
    session_.send_data(id, update);
    session_.finish_fixed(id, kOkTrailers);
  }
}

}  // namespace dispatch::transport
