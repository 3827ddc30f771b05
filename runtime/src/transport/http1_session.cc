// The HTTP/1.1 session and the hand-over to HTTP/2 (http1_session.h).
#include "transport/http1_session.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "transport/http2_connection.h"
#include "transport/waiting_calls.h"

namespace dispatch::transport {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

// One HTTP/1.1 connection: reads a request, answers it, repeats while
// keep-alive holds. A quick call is answered on the strand (the I/O thread
// that read it); any other on a worker, which writes the answer itself and
// hands the session back to the strand to read the next request.
class Session final : public Connection, public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<ServerCore> server, Lane& lane)
      : stream_(std::move(socket)), server_(std::move(server)), lane_(lane), timer_(stream_.get_executor()) {
    // Beast reads at most the buffer's free capacity (512 bytes when empty)
    // and the parser empties it into the body as it goes, so an unreserved
    // buffer reads a 4 KiB request in 9 recvmsg calls, each re-arming the
    // read timer.
    buffer_.reserve(kReadBufferBytes);
  }
  ~Session() {
    if (!handed_over_) server_->open_http1->dec();
    server_->session_closed(this);
  }

  // Each on the session's strand.
  // A new connection is a request on its way: header_timeout bounds it from
  // the accept (idle_timeout is for the wait between a keep-alive
  // connection's requests).
  void start() override { next_request(/*fresh=*/true); }
  void reject_over_limit() override {
    respond(error_response(
        Error(Code::unavailable, "server has reached its limit of " +
                                     std::to_string(server_->options.max_connections) +
                                     " connections; retry later"),
        http::status::service_unavailable, /*keep_alive=*/false));
  }
  void begin_drain(bool force) override {
    draining_.store(true);
    if (auto h2 = h2_.lock()) return h2->begin_drain(force);
    if (handed_over_) return;
    // A request whose headers are not all in is not a call yet.
    if (force || state_ == State::idle || state_ == State::header) close();
  }
  asio::any_io_executor executor() override { return stream_.get_executor(); }

 private:
  // idle: a keep-alive connection waits for its next request's first byte
  // (idle_timeout); header: the rest of the headers are on their way
  // (header_timeout); reading: the body (read_timeout); busy: the call
  // runs; writing: the answer goes out.
  enum class State { idle, header, reading, busy, writing };
  static constexpr std::size_t kReadBufferBytes = 16 * 1024;

  void next_request(bool fresh) {
    if (draining_.load()) return close();
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(server_->options.max_header_bytes));
    read_timed_out_ = false;
    request_bytes_ = buffer_.size() != 0;
    if (fresh || request_bytes_) {
      begin_header();
    } else {
      state_ = State::idle;
      last_active_ = Clock::now();
      timer_by(last_active_ + server_->options.idle_timeout);
    }
    // A pipelined request may be in the buffer already; otherwise the next
    // one is not here yet (its client is reading our answer): wait first.
    if (buffer_.size() != 0) return read_available();
    wait_readable();
  }

  // The request has begun (its first byte, or a new connection): its
  // headers must all be in within header_timeout, however the client
  // spaces them out, so a client sending a line now and then cannot hold a
  // connection slot for long.
  void begin_header() {
    state_ = State::header;
    header_began_ = Clock::now();
    timer_by(header_began_ + server_->options.header_timeout);
  }

  // Waits for the next bytes with one asynchronous read into the buffer,
  // then parses with the socket's non-blocking synchronous reads: one
  // wake-up, one recvmsg that usually returns the whole request, and the
  // parse finds it in the buffer. (Beast's asynchronous reads post every
  // step through the io_context: two more trips through the event loop per
  // request. A bare readiness wait, async_wait, costs an epoll_ctl per
  // request, which Asio skips for a read after one that drained the socket.)
  void wait_readable() {
    // The timer ran out while a completed read was already queued, so
    // cancelling found nothing to abort.
    if (read_timed_out_) return on_read_timeout();
    auto space = buffer_.prepare(beast::read_size(buffer_, kReadBufferBytes));
    stream_.socket().async_read_some(space, [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->buffer_.commit(n);
      if (n != 0) {
        self->request_bytes_ = true;
        if (self->state_ == State::idle) self->begin_header();
      }
      // The end of the stream is left to the parse below, which tells a
      // clean close from a cut-off request as it did for the sync reads.
      if (ec && ec != asio::error::eof) return self->on_body(ec);  // cancelled: a timeout or a close
      self->read_available();
    });
  }

  // Parses what the socket has without waiting; waits again when the
  // request is not whole yet.
  void read_available() {
    beast::error_code ec;
    if (first_request_) {
      switch (http2_preface()) {
        case Preface::partial:
          return wait_readable();
        case Preface::whole:
          return hand_over_to_http2();
        case Preface::none:
          break;
      }
    }
    if (!parser_->is_header_done()) {
      http::read_header(stream_.socket(), buffer_, *parser_, ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) return wait_readable();
      if (ec) return on_read_error(ec);
      if (!on_header()) return;
    }
    http::read(stream_.socket(), buffer_, *parser_, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return wait_readable();
    on_body(ec);
  }

  // The client connection preface of HTTP/2 (RFC 9113 3.4): a client with
  // prior knowledge sends it first; no HTTP/1.1 request begins with it.
  enum class Preface { none, partial, whole };
  Preface http2_preface() const {
    static constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const auto data = buffer_.data();
    const std::string_view have(static_cast<const char*>(data.data()), std::min(data.size(), kPreface.size()));
    if (have != kPreface.substr(0, have.size())) return Preface::none;
    return have.size() == kPreface.size() ? Preface::whole : Preface::partial;
  }

  // The rest of the connection is HTTP/2: its socket, and what was read of
  // it, go to an Http2Connection on this same strand; this session stays
  // the server's record of the connection until that one ends.
  void hand_over_to_http2();

  // The headers are in. False when reading goes on later (after a 100
  // Continue is written).
  bool on_header() {
    state_ = State::reading;
    first_request_ = false;
    // The body's read timeout cancels the wait rather than closing the
    // socket (as Beast's stream expiry would), so the client gets a 408.
    read_timed_out_ = false;
    header_at_ = Clock::now();
    timer_by(header_at_ + server_->options.read_timeout);
    auto& req = parser_->get();
    if (auto refused = server_->handler->refuse_head(req)) {
      respond(std::move(*refused));
      return false;
    }
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      // curl sends Expect for larger bodies and waits for this before sending.
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue),
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                          if (ec) return self->on_body(ec);
                          self->read_available();
                        });
      return false;
    }
    return true;
  }

  void on_read_error(beast::error_code ec) {
    if (auto answer = server_->handler->refuse_unread(ec)) return respond(std::move(*answer));
    close();  // peer closed, idle timeout, drain: nothing to answer
  }

  // The header or body timeout ran out with the request unfinished: 408,
  // then close (what is left of the request cannot be skipped safely).
  void on_read_timeout() {
    const bool header = !parser_->is_header_done();
    const auto& o = server_->options;
    server_->handler->count_rejected(Protocol::connect, Code::deadline_exceeded);
    respond(error_response(
        Error(Code::deadline_exceeded,
              header ? "request headers not received within the server's header timeout of " +
                           std::to_string(o.header_timeout.count()) + " ms"
                     : "request body not received within the server's read timeout of " +
                           std::to_string(o.read_timeout.count()) + " ms"),
        http::status::request_timeout, false));
  }

  void on_body(beast::error_code ec) {
    if (ec == asio::error::operation_aborted && read_timed_out_) return on_read_timeout();
    if (ec) return on_read_error(ec);
    state_ = State::busy;
    request_ = parser_->release();
    received_ = Clock::now();
    const RequestHandler& handler = *server_->handler;
    // Who answers, found once for the choice of thread and for serve(). A
    // route that throws here (routes are the user's to write) is asked
    // again inside serve(), which answers 500.
    try {
      resolved_ = handler.resolve(request_);
    } catch (...) {
      resolved_.reset();
    }
    // On the lane's own thread only: a rescue thread serves the lane while
    // its thread is held, and must not be held in turn.
    const auto place = resolved_ ? handler.place(*resolved_) : RequestHandler::Place::io_thread;
    if (server_->options.inline_limit.count() > 0 && !lane_.rescued.load(std::memory_order_acquire) &&
        place == RequestHandler::Place::io_thread) {
      // call_began then watchdog_parked, both sequentially consistent: the
      // watchdog writes them in the other order, so either it sees this
      // call and stays awake, or this sees it parked and wakes it.
      lane_.call_began.store(now_ns());
      lane_.inline_calls.store(lane_.inline_calls.load(std::memory_order_relaxed) + 1,
                               std::memory_order_relaxed);
      if (server_->watchdog_parked.load()) server_->unpark_watchdog();
      response_ = handler.serve(request_, received_, resolved_ ? &*resolved_ : nullptr);
      lane_.call_began.store(0, std::memory_order_release);
      return write_answer(/*on_worker=*/false);
    }
    server_->run_off_lane(place, [self = shared_from_this()] {
      self->response_ = self->server_->handler->serve(self->request_, self->received_,
                                                      self->resolved_ ? &*self->resolved_ : nullptr);
      self->write_answer(/*on_worker=*/true);
    });
  }

  // The answer in response_, on the strand or on the worker that owns the
  // busy session. The answer is written at once when the socket takes it
  // whole without waiting (the usual case: header and body in one sendmsg),
  // so the client gets it without first waking another thread. While the
  // session is busy nothing on the strand touches the socket except close()
  // (a forced drain), which socket_mu_ keeps apart from this write.
  void write_answer(bool on_worker) {
    if (draining_.load()) response_.keep_alive(false);
    if (on_worker) WaitingCalls::finishing();  // the client may call again before this thread is back
    beast::error_code ec;
    {
      std::lock_guard lock(socket_mu_);
      if (closed_) return;  // forced drain: nobody is waiting for this answer
      serializer_.emplace(response_);
      http::write(stream_.socket(), *serializer_, ec);
    }
    auto next = [self = shared_from_this(), ec] {
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        // The socket's buffer is full (a big answer or a slow reader): the
        // rest goes out asynchronously under the write timeout.
        return self->finish_write();
      }
      self->after_write(ec);
    };
    if (on_worker) return asio::dispatch(stream_.get_executor(), std::move(next));
    next();
  }

  // On the strand: an answer that needs no function (a refusal before the
  // request was read whole).
  void respond(Response response) {
    response_ = std::move(response);
    if (draining_.load()) response_.keep_alive(false);
    serializer_.emplace(response_);
    finish_write();
  }

  // On the strand: writes what serializer_ has not written yet.
  void finish_write() {
    state_ = State::writing;
    stream_.expires_after(server_->options.read_timeout);
    http::async_write(stream_, *serializer_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->after_write(ec); });
  }

  void after_write(beast::error_code ec) {
    if (state_ == State::writing) stream_.expires_never();  // finish_write's
    if (ec || !response_.keep_alive()) return close();
    next_request(/*fresh=*/false);
  }

  // The idle, header and body read timeouts share one timer, without a timer
  // operation per request (each is a timerfd_settime system call): the
  // phases only note when they began, and the timer, when it fires, acts if
  // the current phase has run out and otherwise sleeps again for what is
  // left. It is moved earlier only when a phase ends before it would fire
  // (a header or body timeout shorter than what is left of an idle one).
  void timer_by(Clock::time_point when) {
    if (timer_armed_ && timer_expiry_ <= when) return;
    timer_armed_ = true;
    timer_expiry_ = when;
    timer_.expires_at(when);  // a pending wait ends with operation_aborted
    timer_.async_wait([self = shared_from_this(), generation = ++timer_generation_](beast::error_code ec) {
      if (generation != self->timer_generation_) return;  // superseded
      self->timer_armed_ = false;
      if (ec || self->closed_) return;  // closed_ is written on this strand only
      self->on_timer();
    });
  }

  void on_timer() {
    const auto now = Clock::now();
    const ServerOptions& o = server_->options;
    switch (state_) {
      case State::idle:
        if (now - last_active_ >= o.idle_timeout) return close();
        return timer_by(last_active_ + o.idle_timeout);
      case State::header:
        if (now - header_began_ < o.header_timeout) return timer_by(header_began_ + o.header_timeout);
        // A new connection that never sent a byte has no request to answer.
        if (!request_bytes_) return close();
        return cancel_read();
      case State::reading:
        if (now - header_at_ < o.read_timeout) return timer_by(header_at_ + o.read_timeout);
        return cancel_read();
      case State::busy:
      case State::writing:  // the call runs as long as it runs; a write has Beast's expiry
        return timer_by(now + o.idle_timeout);
    }
  }

  // Ends the pending read (or 100 Continue write) with operation_aborted,
  // which on_body() answers with a 408.
  void cancel_read() {
    read_timed_out_ = true;
    beast::error_code ignored;
    stream_.socket().cancel(ignored);
  }

  void close() {
    std::lock_guard lock(socket_mu_);
    closed_ = true;
    ++timer_generation_;
    timer_.cancel();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<ServerCore> server_;
  Lane& lane_;
  // On the strand: the idle, header and body timeouts (timer_by()).
  asio::steady_timer timer_;
  bool timer_armed_ = false;
  Clock::time_point timer_expiry_;
  uint64_t timer_generation_ = 0;
  Clock::time_point last_active_;   // when the wait for a request began
  Clock::time_point header_began_;  // a new connection's accept, or the request's first byte
  Clock::time_point header_at_;     // when the request's headers were read
  bool request_bytes_ = false;      // a byte of the current request has arrived (on the strand)
  bool read_timed_out_ = false;     // on the strand
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Request request_;
  Response response_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  std::mutex socket_mu_;  // a worker's write of an answer vs close() on the strand
  bool closed_ = false;   // guarded by socket_mu_
  Clock::time_point received_;
  std::optional<RequestHandler::Resolution> resolved_;  // who answers request_; empty: resolve() threw
  std::atomic<bool> draining_{false};  // set on the strand, read by the worker answering
  State state_ = State::idle;
  bool first_request_ = true;  // HTTP/2 is recognised on a connection's first bytes only
  bool handed_over_ = false;   // the socket is an Http2Connection's now
  std::weak_ptr<Http2Connection> h2_;
};

// What an HTTP/2 connection on a lane needs from the server: the same
// inline-or-worker decision and watchdog bookkeeping as an HTTP/1.1 call.
class LaneHost final : public ConnectionHost {
 public:
  LaneHost(std::shared_ptr<ServerCore> server, Lane& lane) : server_(std::move(server)), lane_(lane) {}
  const RequestHandler& handler() const override { return *server_->handler; }
  bool may_run_inline() const override {
    return server_->options.inline_limit.count() > 0 && !lane_.rescued.load(std::memory_order_acquire);
  }
  void run_inline(const std::function<void()>& call) override {
    // As Session::on_body: call_began, then watchdog_parked.
    lane_.call_began.store(now_ns());
    lane_.inline_calls.store(lane_.inline_calls.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (server_->watchdog_parked.load()) server_->unpark_watchdog();
    call();
    lane_.call_began.store(0, std::memory_order_release);
  }
  void run_on(RequestHandler::Place place, std::function<void()> work) override {
    server_->run_off_lane(place, std::move(work));
  }
  void closed() override { server_->open_http2->dec(); }

 private:
  std::shared_ptr<ServerCore> server_;
  Lane& lane_;
};

void Session::hand_over_to_http2() {
  handed_over_ = true;
  first_request_ = false;
  ++timer_generation_;  // the session's timeouts are the HTTP/2 connection's now
  timer_.cancel();
  const auto data = buffer_.data();
  std::string preread(static_cast<const char*>(data.data()), data.size());
  buffer_.consume(buffer_.size());
  server_->open_http1->dec();
  server_->open_http2->inc();
  auto connection = std::make_shared<Http2Connection>(
      stream_.release_socket(), std::make_shared<LaneHost>(server_, lane_), shared_from_this());
  h2_ = connection;
  if (draining_.load()) {
    connection->start(std::move(preread));
    return connection->begin_drain(false);
  }
  connection->start(std::move(preread));
}

}  // namespace

std::shared_ptr<Connection> make_http1_session(tcp::socket socket, std::shared_ptr<ServerCore> server,
                                               Lane& lane) {
  return std::make_shared<Session>(std::move(socket), std::move(server), lane);
}

}  // namespace dispatch::transport
