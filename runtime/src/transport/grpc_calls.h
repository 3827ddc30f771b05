// Calls over one HTTP/2 connection: turns an Http2Session's request
// events into calls of the table's functions (unary) or of the built-in
// services (health, reflection), and their outcomes into gRPC responses:
// headers, one length-prefixed message, trailers with grpc-status (or a
// trailers-only response for an error). A request that is not gRPC (a
// Connect call, JSON or binary, a CloudEvent, GET /metrics or a probe) is
// answered as over HTTP/1.1: the whole request goes to
// RequestHandler::serve() and its answer comes back as HTTP/2. Where a call runs (this thread or a
// worker) is the Host's decision; the session is touched on the
// connection's thread only.
//
// Also the gRPC request checks shared with gRPC-Web (read_grpc_headers).
//
// Not for: sockets (http2_connection.cc), HTTP/2 framing (http2_session.h),
// the protocol's byte formats (grpc_framing.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "transport/grpc_framing.h"
#include "transport/grpc_services.h"
#include "transport/http2_session.h"
#include "transport/request_handler.h"

namespace dispatch::transport {

using HeaderLookup = std::function<std::optional<std::string_view>(std::string_view lower_name)>;

// What a gRPC request's headers ask for, checked.
struct GrpcRequestHeaders {
  grpc::Compression encoding = grpc::Compression::identity;
  bool gzip_reply = false;  // the request was gzip and the client accepts gzip
  std::optional<std::chrono::nanoseconds> timeout;
  uint32_t attempt = 0;  // Dispatch-Attempt
};
// grpc-timeout, grpc-encoding (unimplemented for an unknown one),
// grpc-accept-encoding and dispatch-attempt.
Result<GrpcRequestHeaders> read_grpc_headers(const HeaderLookup& header);

// A RequestInfo (for the authenticate hook) over a header lookup.
// Calls its argument with each header of the request, in order.
using HeaderVisitor = std::function<void(const std::function<void(std::string_view, std::string_view)>&)>;

class HeaderRequestInfo final : public RequestInfo {
 public:
  HeaderRequestInfo(HeaderLookup header, HeaderVisitor visit) : header_(std::move(header)), visit_(std::move(visit)) {}
  std::optional<std::string_view> header(std::string_view name) const override { return header_(name); }
  void for_each_header(const std::function<void(std::string_view, std::string_view)>& f) const override {
    visit_(f);
  }

 private:
  HeaderLookup header_;
  HeaderVisitor visit_;
};

// An answer to write on a stream. A gRPC call's: when `ok`, the framed
// message in `body`, sent between the stream's fixed response headers and
// grpc-status 0; else a trailers-only response, all of it in `headers`
// (":status" 200 and the grpc-status). For a request that is not gRPC
// (`http`: Connect, gRPC-Web, a probe), the whole HTTP answer: `headers`
// (":status" first) and `body`, no trailers.
struct GrpcAnswer {
  bool ok = false;
  std::string body;
  // All of them, unless `ok`; when `ok`, the lines the function added to
  // the fixed ones (response_headers()).
  Http2Headers headers;
  bool http = false;
};

// The HTTP/2 form of an HTTP/1.1 answer: ":status", the fields with
// lower-case names, without those HTTP/2 forbids (Connection, Keep-Alive,
// Proxy-Connection, Transfer-Encoding, Upgrade); the body as it is.
GrpcAnswer http2_answer(Response response);

class GrpcCalls final : public Http2Session::Handler {
 public:
  class Host {
   public:
    // Runs `call` where `place` says (RequestHandler::place): now on this
    // thread when that is the I/O thread and the thread may run calls,
    // else on a worker or on the pool for waiting calls; either way
    // `deliver(stream, answer)` is then called on the connection's thread.
    virtual void run(int32_t stream, RequestHandler::Place place, std::function<GrpcAnswer()> call) = 0;

   protected:
    ~Host() = default;
  };

  GrpcCalls(Http2Session& session, const RequestHandler& handler, Host& host);

  void on_request(int32_t stream, Http2Headers headers) override;
  void on_data(int32_t stream, std::string_view data) override;
  void on_end(int32_t stream) override;
  void on_close(int32_t stream, uint32_t error_code) override;

  // A call's answer, on the connection's thread.
  void deliver(int32_t stream, GrpcAnswer answer);
  // The server drains: held Health/Watch streams get NOT_SERVING and end.
  void drain();
  // Calls running now (their streams may be gone): they count against the
  // stream limit, so a peer resetting streams cannot pile up work.
  std::size_t running() const noexcept { return running_; }
  // Streams held open by Health/Watch (not waiting for anything).
  std::size_t held() const noexcept { return held_; }
  // Requests still arriving (no answer begun) whose headers came `limit` or
  // more before `now` are answered DEADLINE_EXCEEDED, whatever bytes the
  // peer sent meanwhile; returns when the next of the others runs out, if
  // any is left.
  std::optional<std::chrono::steady_clock::time_point> expire_unfinished(std::chrono::steady_clock::time_point now,
                                                                         std::chrono::milliseconds limit);

 private:
  struct Stream {
    // Not changed once in: the views below point into it. Shared with a
    // unary call's function (CallContext::request_headers), which may still
    // run on a worker after a reset has closed the stream.
    std::shared_ptr<const Http2Headers> headers;
    std::string_view path;
    const Method* method = nullptr;
    const GrpcServices::Method* builtin = nullptr;
    grpc::Codec codec = grpc::Codec::proto;  // the messages' encoding (+json: the JSON mapping)
    GrpcRequestHeaders grpc;
    std::string body;  // a unary call's whole body (signatures cover it)
    grpc::MessageReader reader{0};
    std::chrono::steady_clock::time_point received;
    bool answered = false;  // answered before the end (an error): ignore the rest
    bool started = false;   // a streaming answer's headers are out
    bool held = false;
    bool http = false;  // not gRPC: answered by RequestHandler::serve()
    // An HTTP stream's protocol in the metrics, should it be refused before
    // serve() has it (gRPC-Web by its content type, else Connect).
    Protocol http_protocol = Protocol::connect;
  };

  std::optional<std::string_view> header(const Stream& s, std::string_view name) const;
  // A trailers-only error answer, now.
  void refuse(int32_t id, Stream& s, const Error& error);
  void start_unary(int32_t id, Stream& s);
  // The request as HTTP/1.1 has it, to RequestHandler::serve() where its
  // function runs.
  void start_http(int32_t id, Stream& s);
  void feed_builtin(int32_t id, Stream& s);
  // The fixed response headers for the stream's codec and encoding.
  static Http2Fields response_headers(const Stream& s);
  // A unary call's answer, on the thread that runs it: `message` as the
  // function's decoder reads it (JSON converted), the function, its reply
  // framed; an error as its trailers-only block.
  static GrpcAnswer answer_call(const RequestHandler& handler, const Method& method, std::string_view message,
                                const CallContext& context, std::chrono::steady_clock::time_point received,
                                bool gzip, grpc::Codec codec);

  Http2Session& session_;
  const RequestHandler& handler_;
  Host& host_;
  std::unordered_map<int32_t, Stream> streams_;
  std::size_t running_ = 0;
  std::size_t held_ = 0;
};

}  // namespace dispatch::transport
