// dispatch::Server on Boost.Beast/Asio: accepting, HTTP/1.1 keep-alive
// sessions, limits and timeouts, where each call runs (I/O thread or worker
// pool) and drain. What a request is answered with is request_handler.cc's;
// this file is the I/O around it.
#include "dispatch/transport/server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/thread_name.h"
#include "transport/request_handler.h"
#include "transport/secure_options.h"

namespace dispatch {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

}  // namespace

Result<std::pair<std::string, uint16_t>> parse_listen_address(std::string_view address) {
  auto bad = [&](const char* why) {
    return Error(Code::invalid_argument,
                 "listen address '" + std::string(address) + "' " + why + "; expected host:port");
  };
  std::string host;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return bad("has an unterminated or portless [IPv6] host");
    }
    host = std::string(address.substr(1, close - 1));
    port = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos) return bad("has no port");
    host = std::string(address.substr(0, colon));
    port = address.substr(colon + 1);
  }
  if (host.empty()) return bad("has no host");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
      std::stoul(std::string(port)) > 65535) {
    return bad("has no valid port (0-65535)");
  }
  return std::make_pair(host, static_cast<uint16_t>(std::stoul(std::string(port))));
}

Result<ServerOptions> ServerOptions::from_env() {
  ServerOptions options;
  if (const char* port = std::getenv("PORT"); port != nullptr && *port != '\0') {
    auto parsed = parse_listen_address(std::string("0.0.0.0:") + port);
    if (!parsed.ok()) {
      return Error(Code::invalid_argument, "PORT='" + std::string(port) + "' is not a port number (0-65535)");
    }
    options.host = parsed->first;
    options.port = parsed->second;
  } else if (const char* addr = std::getenv("DISPATCH_ENDPOINT_ADDR"); addr != nullptr && *addr != '\0') {
    auto parsed = parse_listen_address(addr);
    if (!parsed.ok()) return std::move(parsed).error().with_context("DISPATCH_ENDPOINT_ADDR");
    options.host = parsed->first;
    options.port = parsed->second;
  }
  auto verifier = transport::verifier_from_env("DISPATCH_VERIFICATION_KEY");
  if (!verifier.ok()) return std::move(verifier).error();
  options.verifier = std::move(*verifier);
  options.warn_if_unverified = true;
  return options;
}

class Session;

// One I/O thread and the io_context it runs: the connections it was given
// are read, answered and written there, so a quick call costs no wake-up of
// another thread (on a VM a thread switch costs more than an HTTP parse).
// When a call on the lane's thread runs long, the watchdog lends the lane a
// rescue thread until the call returns, so the lane's other connections go
// on being served.
struct Lane {
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  // steady_clock nanoseconds when the call running on the lane's thread
  // began; 0 while none runs.
  std::atomic<int64_t> call_began{0};
  std::atomic<bool> rescued{false};  // a rescue thread runs ioc too
  // Inline calls begun; written by the lane's thread only, read by the
  // watchdog to tell an idle server from a busy one.
  std::atomic<uint64_t> inline_calls{0};
};

// Everything a server shares with its sessions (Server::Impl is this).
struct ServerCore : std::enable_shared_from_this<ServerCore> {
  ServerCore(const DispatchTable& t, ServerOptions o) : table(t), options(std::move(o)) {}

  const DispatchTable& table;
  ServerOptions options;
  std::optional<transport::RequestHandler> handler;  // set by start()
  // The acceptor and the signals have a thread of their own, which a call
  // never holds.
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  tcp::acceptor acceptor{ioc};
  std::optional<asio::signal_set> signals;
  std::thread accept_thread;
  std::vector<std::unique_ptr<Lane>> lanes;
  std::size_t next_lane = 0;  // on the accept thread
  std::unique_ptr<asio::thread_pool> workers;
  std::thread watchdog;
  // True while the watchdog sleeps because no call has run inline for a
  // while; the first inline call after that wakes it (see watch()).
  std::atomic<bool> watchdog_parked{false};
  std::vector<std::thread> rescuers;  // guarded by mu
  std::atomic<bool> stopping{false};
  std::atomic<uint16_t> bound_port{0};

  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // guarded by mu
  bool started = false;       // guarded by mu
  bool draining = false;      // guarded by mu
  bool force_close = false;   // guarded by mu
  bool threads_joined = false;  // guarded by mu
  std::once_flag shutdown_once;

  Result<void> start();
  void accept();
  void begin_drain(bool force);
  void wait_and_shutdown();
  void session_closed(Session* s) {
    std::lock_guard lock(mu);
    sessions.erase(s);
    cv.notify_all();
  }
  void watch();  // the watchdog thread's loop
  void unpark_watchdog() {
    {
      std::lock_guard lock(mu);
      watchdog_parked = false;
    }
    cv.notify_all();
  }
};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// One HTTP/1.1 connection: reads a request, answers it, repeats while
// keep-alive holds. A quick call is answered on the strand (the I/O thread
// that read it); any other on a worker, which writes the answer itself and
// hands the session back to the strand to read the next request.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<ServerCore> server, Lane& lane)
      : stream_(std::move(socket)), server_(std::move(server)), lane_(lane), timer_(stream_.get_executor()) {
    // Beast reads at most the buffer's free capacity (512 bytes when empty)
    // and the parser empties it into the body as it goes, so an unreserved
    // buffer reads a 4 KiB request in 9 recvmsg calls, each re-arming the
    // read timer.
    buffer_.reserve(kReadBufferBytes);
  }
  ~Session() { server_->session_closed(this); }

  // Each on the session's strand.
  // A new connection is a request on its way: header_timeout bounds it from
  // the accept (idle_timeout is for the wait between a keep-alive
  // connection's requests).
  void start() { next_request(/*fresh=*/true); }
  void reject_over_limit() {
    respond(transport::error_response(
        Error(Code::unavailable, "server has reached its limit of " +
                                     std::to_string(server_->options.max_connections) +
                                     " connections; retry later"),
        http::status::service_unavailable, /*keep_alive=*/false));
  }
  void begin_drain(bool force) {
    draining_.store(true);
    // A request whose headers are not all in is not a call yet.
    if (force || state_ == State::idle || state_ == State::header) close();
  }
  asio::any_io_executor executor() { return stream_.get_executor(); }

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

  // The headers are in. False when reading goes on later (after a 100
  // Continue is written).
  bool on_header() {
    state_ = State::reading;
    // The body's read timeout cancels the wait rather than closing the
    // socket (as Beast's stream expiry would), so the client gets a 408.
    read_timed_out_ = false;
    header_at_ = Clock::now();
    timer_by(header_at_ + server_->options.read_timeout);
    auto& req = parser_->get();
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
    if (auto answer = transport::read_error_response(ec, server_->options)) return respond(std::move(*answer));
    close();  // peer closed, idle timeout, drain: nothing to answer
  }

  // The header or body timeout ran out with the request unfinished: 408,
  // then close (what is left of the request cannot be skipped safely).
  void on_read_timeout() {
    const bool header = !parser_->is_header_done();
    const auto& o = server_->options;
    respond(transport::error_response(
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
    const transport::RequestHandler& handler = *server_->handler;
    // On the lane's own thread only: a rescue thread serves the lane while
    // its thread is held, and must not be held in turn.
    if (server_->options.inline_limit.count() > 0 && !lane_.rescued.load(std::memory_order_acquire) &&
        handler.is_quick(request_)) {
      // call_began then watchdog_parked, both sequentially consistent: the
      // watchdog writes them in the other order, so either it sees this
      // call and stays awake, or this sees it parked and wakes it.
      lane_.call_began.store(now_ns());
      lane_.inline_calls.store(lane_.inline_calls.load(std::memory_order_relaxed) + 1,
                               std::memory_order_relaxed);
      if (server_->watchdog_parked.load()) server_->unpark_watchdog();
      response_ = handler.serve(request_, received_);
      lane_.call_began.store(0, std::memory_order_release);
      return write_answer(/*on_worker=*/false);
    }
    asio::post(*server_->workers, [self = shared_from_this()] {
      // asio::thread_pool makes its threads itself: each names itself at
      // its first call.
      thread_local const bool named = (detail::name_this_thread("dispatch-worker"), true);
      (void)named;
      self->response_ = self->server_->handler->serve(self->request_, self->received_);
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
  void respond(transport::Response response) {
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
  transport::Request request_;
  transport::Response response_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  std::mutex socket_mu_;  // a worker's write of an answer vs close() on the strand
  bool closed_ = false;   // guarded by socket_mu_
  Clock::time_point received_;
  std::atomic<bool> draining_{false};  // set on the strand, read by the worker answering
  State state_ = State::idle;
};

Result<void> ServerCore::start() {
  {
    std::lock_guard lock(mu);
    if (started) return {};
    started = true;
  }
  handler.emplace(table, options);
  const std::string where = options.host + ":" + std::to_string(options.port);
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(options.host, std::to_string(options.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    std::lock_guard lock(mu);
    started = false;
    return Error(Code::unavailable, "cannot resolve listen address " + where + ": " + ec.message());
  }
  const tcp::endpoint endpoint = *endpoints.begin();
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::lock_guard lock(mu);
    started = false;  // nothing runs: stop()/drain() have nothing to wait for
    return Error(Code::unavailable, "cannot listen on " + where + ": " + ec.message());
  }
  bound_port = acceptor.local_endpoint().port();

  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  workers = std::make_unique<asio::thread_pool>(options.workers ? options.workers : cores);
  // At least kMinIoThreads by default, even on fewer cores: while there are
  // no more connections than I/O threads, each connection has a thread of
  // its own, which is woken only by its peer, and the kernel runs the two
  // side by side on one CPU. A thread serving peers on both CPUs of a small
  // machine is woken across CPUs (an inter-processor interrupt, a VM exit on
  // a VM) for many of its calls. On the project's 2-core VM, 8 threads
  // instead of 2 served 16-25% more calls a second at 8 and 32 connections
  // and no fewer at 1 or 128 (docs/benchmarks.md). An idle I/O thread costs
  // a sleeping thread and three descriptors.
  constexpr std::size_t kMinIoThreads = 8;
  const std::size_t n_io = options.io_threads ? options.io_threads : std::max(cores, kMinIoThreads);
  for (std::size_t i = 0; i < n_io; ++i) {
    auto lane = std::make_unique<Lane>();
    // Asio opens an io_context's epoll, eventfd and timerfd descriptors with
    // its first I/O object; a timer makes that happen now, so every
    // descriptor the server keeps is open once start() returns (the soak
    // test's descriptor count, and EMFILE, are not met at a first connection).
    { asio::steady_timer open_reactor(lane->ioc); }
    lane->work.emplace(lane->ioc.get_executor());
    lane->thread = std::thread([l = lane.get(), i] {
      detail::name_this_thread("dispatch-io-" + std::to_string(i));
      l->ioc.run();
    });
    lanes.push_back(std::move(lane));
  }
  work.emplace(ioc.get_executor());
  asio::post(ioc, [self = shared_from_this()] { self->accept(); });
  accept_thread = std::thread([this] {
    detail::name_this_thread("dispatch-accept");
    ioc.run();
  });
  if (options.inline_limit.count() > 0) {
    watchdog = std::thread([this] {
      detail::name_this_thread("dispatch-watch");
      watch();
    });
  }
  options.logger.log(LogLevel::info, "listening on http://" + options.host + ":" +
                                         std::to_string(bound_port.load()) + " (" +
                                         std::to_string(handler->function_count()) +
                                         (handler->function_count() == 1 ? " function)" : " functions)"));
  if (options.verifier) {
    options.logger.log(LogLevel::info, "verifying request signatures (RFC 9421, Ed25519)");
  } else if (options.warn_if_unverified) {
    options.logger.log(LogLevel::warn,
                       "DISPATCH_VERIFICATION_KEY is not set: requests are not verified, so anyone who can "
                       "reach this address can call its functions");
  }
  return {};
}

void ServerCore::accept() {
  Lane& lane = *lanes[next_lane++ % lanes.size()];
  acceptor.async_accept(asio::make_strand(lane.ioc), [self = shared_from_this(), &lane](beast::error_code ec,
                                                                                       tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
    if (!ec) {
      // Without TCP_NODELAY, Nagle holds a reply's segment until the client
      // ACKs the previous one, and the client's delayed ACK waits 40 ms.
      // Non-blocking (for synchronous calls only; asynchronous ones always
      // are): a worker's write of an answer must never wait for a slow reader.
      beast::error_code option_ec;
      socket.set_option(tcp::no_delay(true), option_ec);
      socket.non_blocking(true, option_ec);
      auto session = std::make_shared<Session>(std::move(socket), self, lane);
      bool over_limit;
      {
        std::lock_guard lock(self->mu);
        over_limit = self->sessions.size() >= self->options.max_connections;
        self->sessions.emplace(session.get(), session);
      }
      asio::dispatch(session->executor(), [session, over_limit] {
        if (over_limit) {
          session->reject_over_limit();
        } else {
          session->start();
        }
      });
    } else {
      // EMFILE and friends: keep accepting; the log says why connections fail.
      self->options.logger.log(LogLevel::error, "accept failed: " + ec.message());
    }
    self->accept();
  });
}

// Looks at the lanes every tick; a lane whose thread has been in one call for
// longer than inline_limit gets a rescue thread that runs its io_context
// until the call returns. (The call's function has also been marked slow by
// then, so its later calls go to the workers: this happens about once per
// function that turns slow.)
void ServerCore::watch() {
  // While calls run inline: 200 wake-ups a second, little CPU, and a held
  // lane waits at most about inline_limit + 5 ms for its rescue. After
  // kParkAfter ticks without an inline call the watchdog parks, so an idle
  // server does not wake at all; the next inline call wakes it (one futex
  // wake per idle-to-busy transition, nothing per call).
  const auto tick = std::chrono::milliseconds(5);
  constexpr int kParkAfter = 20;
  const int64_t limit_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(options.inline_limit).count();
  int quiet_ticks = 0;
  uint64_t seen_calls = 0;
  std::unique_lock lock(mu);
  while (!stopping) {
    if (quiet_ticks >= kParkAfter) {
      watchdog_parked = true;
      bool running = false;
      for (auto& lane : lanes) running = running || lane->call_began.load() != 0;
      if (!running) cv.wait(lock, [this] { return stopping.load() || !watchdog_parked.load(); });
      watchdog_parked = false;
      quiet_ticks = 0;
    } else {
      cv.wait_for(lock, tick, [this] { return stopping.load(); });
    }
    if (stopping) return;
    const int64_t now = now_ns();
    uint64_t calls = 0;
    bool running = false;
    for (auto& lane : lanes) {
      calls += lane->inline_calls.load(std::memory_order_relaxed);
      running = running || lane->call_began.load(std::memory_order_relaxed) != 0;
    }
    quiet_ticks = (calls == seen_calls && !running) ? quiet_ticks + 1 : 0;
    seen_calls = calls;
    for (auto& owned : lanes) {
      Lane& lane = *owned;
      const int64_t began = lane.call_began.load(std::memory_order_acquire);
      if (began == 0 || now - began <= limit_ns || lane.rescued.exchange(true)) continue;
      if (options.logger.enabled(LogLevel::debug)) {
        options.logger.log(LogLevel::debug, "an I/O thread has been in one call for " +
                                                std::to_string((now - began) / 1'000'000) +
                                                " ms: lending its connections another thread");
      }
      rescuers.emplace_back([this, &lane, began] {
        detail::name_this_thread("dispatch-rescue");
        while (!stopping && lane.call_began.load(std::memory_order_acquire) == began) {
          lane.ioc.run_one_for(std::chrono::milliseconds(5));
        }
        lane.rescued.store(false, std::memory_order_release);
      });
    }
  }
}

void ServerCore::begin_drain(bool force) {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(mu);
    if ((draining && !force) || threads_joined) return;
    draining = true;
    cv.notify_all();
    // Never started: nothing runs the io_context, so post nothing to it.
    if (!started) return;
    handler->set_draining();
    force_close = force_close || force;
    for (auto& [_, weak] : sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
    cv.notify_all();
  }
  options.logger.log(LogLevel::info, force ? "stopping: closing all connections"
                                           : "draining: no new connections; finishing in-flight calls");
  asio::post(ioc, [self = shared_from_this()] {
    beast::error_code ignored;
    self->acceptor.close(ignored);
    if (self->signals) self->signals->cancel(ignored);
  });
  for (auto& s : live) {
    asio::post(s->executor(), [s, force] { s->begin_drain(force); });
  }
}

void ServerCore::wait_and_shutdown() {
  std::call_once(shutdown_once, [this] {
    {
      std::unique_lock lock(mu);
      if (!started) return;
      const bool drained = cv.wait_for(lock, options.drain_timeout, [this] { return sessions.empty(); });
      if (!drained) {
        lock.unlock();
        options.logger.log(LogLevel::warn, "drain timeout: closing the remaining connections");
        begin_drain(/*force=*/true);
        lock.lock();
        cv.wait_for(lock, std::chrono::seconds(5), [this] { return sessions.empty(); });
      }
    }
    // Workers first: a call still running posts its answer to its lane.
    if (workers) workers->join();
    std::vector<std::thread> lent;
    {
      std::lock_guard lock(mu);
      stopping = true;
      lent.swap(rescuers);
      cv.notify_all();
    }
    if (watchdog.joinable()) watchdog.join();
    {
      std::lock_guard lock(mu);
      for (auto& t : rescuers) lent.push_back(std::move(t));  // lent while we swapped
    }
    for (auto& t : lent) t.join();
    work.reset();
    ioc.stop();
    if (accept_thread.joinable()) accept_thread.join();
    for (auto& lane : lanes) {
      lane->work.reset();
      lane->ioc.stop();
      lane->thread.join();
    }
    // Run what the stop left queued (aborted reads, the acceptor's last
    // handler): their captures hold this Impl, and must not outlive it.
    ioc.restart();
    ioc.run();
    for (auto& lane : lanes) {
      lane->ioc.restart();
      lane->ioc.run();
    }
    std::lock_guard lock(mu);
    threads_joined = true;
    cv.notify_all();
  });
}

struct Server::Impl : ServerCore {
  using ServerCore::ServerCore;
};

Server::Server(const DispatchTable& table, ServerOptions options)
    : impl_(std::make_shared<Impl>(table, std::move(options))) {}

Server::~Server() { stop(); }

Result<void> Server::start() { return impl_->start(); }

uint16_t Server::port() const noexcept { return impl_->bound_port.load(); }

void Server::handle_signals() {
  impl_->signals.emplace(impl_->ioc, SIGINT, SIGTERM);
  impl_->signals->async_wait([weak = std::weak_ptr<ServerCore>(impl_)](beast::error_code ec, int signal) {
    if (ec) return;
    if (auto impl = weak.lock()) {
      impl->options.logger.log(LogLevel::info,
                               std::string("received ") + (signal == SIGTERM ? "SIGTERM" : "SIGINT"));
      impl->begin_drain(false);
    }
  });
}

Result<void> Server::run() {
  auto started = impl_->start();
  if (!started.ok()) return started;
  {
    std::unique_lock lock(impl_->mu);
    impl_->cv.wait(lock, [this] { return impl_->draining; });
  }
  impl_->wait_and_shutdown();
  impl_->options.logger.log(LogLevel::info, "stopped");
  return {};
}

void Server::drain() {
  impl_->begin_drain(false);
  impl_->wait_and_shutdown();
}

void Server::stop() {
  impl_->begin_drain(true);
  impl_->wait_and_shutdown();
}

}  // namespace dispatch
