// One HttpClient's call_async() connections on an event loop (async_pool.h).
// A blocking call per pool thread (an earlier design) cost two thread
// switches per call, which a 2-core VM pays dearly for; here a plain call
// costs the loop one write, one read and a callback. TLS runs on the loop
// too (Asio's ssl::stream over the same socket), so https:// calls in
// flight hold connections, not threads.
#include "transport/async_pool.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <deque>
#include <future>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "transport/http_text.h"

namespace dispatch::transport {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = ClientEndpoint::Clock;

// One keep-alive connection owned by the event loop. Handlers hold it by
// shared_ptr: a closed connection lives until its cancelled operations have
// run, and they find `call` empty and do nothing.
struct AsyncConn {
  enum class State { connecting, busy, idle, closed };

  AsyncConn(asio::io_context& ioc, ssl::context* tls_context) : socket(ioc) {
    if (tls_context) tls.emplace(socket, *tls_context);
    buffer.reserve(16 * 1024);
  }

  tcp::socket socket;
  std::optional<ssl::stream<tcp::socket&>> tls;  // over `socket`, https:// only
  beast::flat_buffer buffer;
  State state = State::connecting;
  std::unique_ptr<AsyncCall> call;  // in flight on it (also while connecting)
  std::optional<http::response_parser<http::string_body>> parser;
  std::size_t written = 0;
  uint64_t served = 0;                  // replies read on it
  Clock::time_point connect_limit;      // while connecting
  bool connect_limit_is_deadline = false;
  Clock::time_point idle_since;
};

}  // namespace

// Everything but submit() and close() runs on the loop thread. Every
// handler holds the engine by shared_ptr, so one that runs after the pool
// was destroyed (a cancelled read, a resolve that was under way) finds it
// alive, and its connection closed.
class AsyncPool::Engine : public std::enable_shared_from_this<Engine> {
 public:
  Engine(std::shared_ptr<ClientEndpoint> endpoint, EventLoop& loop, std::chrono::milliseconds idle_timeout)
      : client_(std::move(endpoint)),
        ioc_(loop.context()),
        idle_timeout_(idle_timeout),
        timer_(ioc_),
        resolver_(ioc_) {
    beast::error_code ec;
    const auto address = asio::ip::make_address(client_->url.host, ec);
    if (!ec) {
      numeric_ = tcp::resolver::results_type::create(
          tcp::endpoint(address, static_cast<unsigned short>(std::stoul(client_->url.port))), client_->url.host,
          client_->url.port);
    }
  }

  void submit(std::unique_ptr<AsyncCall> call) {
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (!closed_) {
        incoming_.push_back(std::move(call));
        wake = !drain_posted_;
        drain_posted_ = true;
      }
    }
    if (call) {  // the client is going away
      run_callback(call->done, canceled(*call));
      return;
    }
    if (wake) asio::post(ioc_, [self = shared_from_this()] { self->drain(); });
  }

  // Any thread: calls submitted from now on are canceled at once.
  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
  }

  // Loop thread: completes every call not yet answered with `canceled` and
  // closes every connection.
  void shut_down() {
    stopping_ = true;
    std::vector<std::unique_ptr<AsyncCall>> left;
    {
      std::lock_guard lock(mu_);
      left.swap(incoming_);
    }
    for (auto& call : waiting_) left.push_back(std::move(call));
    waiting_.clear();
    std::vector<ConnPtr> conns;
    for (auto& [raw, conn] : live_) conns.push_back(conn);
    for (ConnPtr& conn : conns) {
      if (conn->call) left.push_back(std::move(conn->call));
      close(*conn);
    }
    idle_.clear();
    timer_.cancel();
    resolver_.cancel();
    for (auto& call : left) {
      Error e = canceled(*call);
      complete(std::move(call), std::move(e));
    }
  }

 private:
  using ConnPtr = std::shared_ptr<AsyncConn>;

  std::string what(const AsyncCall& call) const { return client_->where() + call.target; }
  Error canceled(const AsyncCall& call) const {
    return Error(Code::canceled, "call to " + what(call) + " canceled: the client was destroyed");
  }
  Error timed_out(const AsyncCall& call) const {
    return Error(Code::deadline_exceeded,
                 "call to " + what(call) + " timed out after " + std::to_string(call.timeout->count()) + " ms");
  }

  // Completes a call: its slot (if any) is already given back, so the
  // callback may start new calls.
  void complete(std::unique_ptr<AsyncCall> call, Result<std::string> result) {
    run_callback(call->done, std::move(result));
  }

  void drain() {
    std::vector<std::unique_ptr<AsyncCall>> batch;
    {
      std::lock_guard lock(mu_);
      batch.swap(incoming_);
      drain_posted_ = false;
    }
    for (auto& call : batch) {
      if (call->deadline) arm(*call->deadline);
      waiting_.push_back(std::move(call));
    }
    start_waiting();
  }

  // Starts waiting calls, in order, while connections allow.
  void start_waiting() {
    while (!waiting_.empty() && !stopping_) {
      if (ConnPtr conn = take_idle()) {
        auto call = std::move(waiting_.front());
        waiting_.pop_front();
        send(conn, std::move(call));
        continue;
      }
      if (live_.size() >= std::max<std::size_t>(1, client_->options.max_connections)) return;
      auto call = std::move(waiting_.front());
      waiting_.pop_front();
      open(std::move(call));
    }
  }

  ConnPtr take_idle() {
    while (!idle_.empty()) {
      ConnPtr conn = std::move(idle_.back());
      idle_.pop_back();
      if (idle_connection_usable(conn->socket.native_handle(), conn->buffer.size(), conn->idle_since)) return conn;
      close(*conn);
    }
    return nullptr;
  }

  void close(AsyncConn& conn) {
    conn.state = AsyncConn::State::closed;
    beast::error_code ignored;
    conn.socket.close(ignored);
    live_.erase(&conn);
  }

  // A new connection for `call`: resolve (unless the host is an address),
  // connect, then send.
  void open(std::unique_ptr<AsyncCall> call) {
    auto conn = std::make_shared<AsyncConn>(ioc_, client_->tls_context.get());
    live_.emplace(conn.get(), conn);
    conn->connect_limit = Clock::now() + client_->options.connect_timeout;
    if (call->deadline && *call->deadline < conn->connect_limit) {
      conn->connect_limit = *call->deadline;
      conn->connect_limit_is_deadline = true;
    }
    conn->call = std::move(call);
    arm(conn->connect_limit);
    if (numeric_) {
      connect(conn, *numeric_);
      return;
    }
    resolver_.async_resolve(client_->url.host, client_->url.port,
                            [self = shared_from_this(), conn](beast::error_code ec, tcp::resolver::results_type results) {
                              if (conn->state != AsyncConn::State::connecting) return;
                              if (ec) {
                                self->fail(conn, Error(Code::unavailable, "cannot resolve " + self->client_->where() +
                                                                              ": " + ec.message()));
                                return;
                              }
                              self->connect(conn, results);
                            });
  }

  void connect(const ConnPtr& conn, const tcp::resolver::results_type& endpoints) {
    asio::async_connect(conn->socket, endpoints,
                        [self = shared_from_this(), conn](beast::error_code ec, const tcp::endpoint&) {
                          if (conn->state != AsyncConn::State::connecting) return;
                          if (ec) {
                            self->fail(conn, Error(Code::unavailable, "cannot connect to " + self->client_->where() +
                                                                          ": " + ec.message()));
                            return;
                          }
                          conn->socket.set_option(tcp::no_delay(true), ec);
                          if (conn->tls) {
                            self->handshake(conn);
                            return;
                          }
                          conn->socket.non_blocking(true, ec);
                          self->opened(conn);
                        });
  }

  // https://: the TLS handshake, with the server's name sent (SNI) and,
  // unless verify_tls is off, checked against its certificate. The connect
  // timeout covers it.
  void handshake(const ConnPtr& conn) {
    const std::string& host = client_->url.host;
    if (!SSL_set_tlsext_host_name(conn->tls->native_handle(), host.c_str())) {
      fail(conn, Error(Code::unavailable, "cannot set TLS server name for " + client_->where()));
      return;
    }
    if (client_->options.verify_tls) conn->tls->set_verify_callback(ssl::host_name_verification(host));
    conn->tls->async_handshake(ssl::stream_base::client, [self = shared_from_this(), conn](beast::error_code ec) {
      if (conn->state != AsyncConn::State::connecting) return;
      if (ec) {
        self->fail(conn, Error(Code::unavailable,
                               "TLS handshake with " + self->client_->where() + " failed: " + ec.message()));
        return;
      }
      self->opened(conn);
    });
  }

  void opened(const ConnPtr& conn) {
    client_->connections_opened.fetch_add(1, std::memory_order_relaxed);
    send(conn, std::move(conn->call));
  }

  // Fails the connection's call and drops the connection.
  void fail(const ConnPtr& conn, Error error) {
    auto call = std::move(conn->call);
    close(*conn);
    start_waiting();
    complete(std::move(call), std::move(error));
  }

  void send(const ConnPtr& conn, std::unique_ptr<AsyncCall> call) {
    conn->state = AsyncConn::State::busy;
    conn->call = std::move(call);
    conn->written = 0;
    conn->parser.emplace();
    conn->parser->body_limit(client_->options.max_response_bytes);
    write(conn);
  }

  // Writes what the socket takes now; waits for room only when it is full
  // (rare: requests are small and the socket's buffer is not). TLS: one
  // asynchronous write of the whole request, encrypted as it goes.
  void write(const ConnPtr& conn) {
    const std::string& bytes = conn->call->bytes;
    if (conn->tls) {
      asio::async_write(*conn->tls, asio::buffer(bytes),
                        [self = shared_from_this(), conn](beast::error_code ec, std::size_t) {
                          if (conn->state != AsyncConn::State::busy) return;
                          if (ec) {
                            self->failed_exchange(conn, ec);
                          } else {
                            self->wait_readable(conn);
                          }
                        });
      return;
    }
    for (;;) {
      beast::error_code ec;
      const std::size_t n =
          conn->socket.write_some(asio::buffer(bytes.data() + conn->written, bytes.size() - conn->written), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        conn->socket.async_wait(tcp::socket::wait_write, [self = shared_from_this(), conn](beast::error_code wait_ec) {
          if (conn->state != AsyncConn::State::busy) return;
          if (wait_ec) {
            self->failed_exchange(conn, wait_ec);
          } else {
            self->write(conn);
          }
        });
        return;
      }
      if (ec) {
        failed_exchange(conn, ec);
        return;
      }
      conn->written += n;
      if (conn->written == bytes.size()) {
        wait_readable(conn);
        return;
      }
    }
  }

  // Reads the reply as it arrives into the connection's buffer and feeds it
  // to the parser. async_read_some, not async_wait: Asio re-registers the
  // socket with epoll (epoll_ctl) for every async_wait, while a read that
  // found nothing is simply queued until epoll reports the socket readable
  // (it was registered once, edge-triggered, when the socket opened), and
  // the reactor then reads on our behalf: one recv per reply.
  void wait_readable(const ConnPtr& conn) {
    const std::size_t room = std::max<std::size_t>(4096, conn->buffer.capacity() - conn->buffer.size());
    auto on_read = [self = shared_from_this(), conn](beast::error_code ec, std::size_t n) {
      if (conn->state != AsyncConn::State::busy) return;
      // A TLS peer that closes without close_notify, as most servers do
      // after a reply delimited by the end of the connection.
      if (ec == ssl::error::stream_truncated) ec = asio::error::eof;
      conn->buffer.commit(n);
      self->parse(conn, ec);
    };
    if (conn->tls) {
      conn->tls->async_read_some(conn->buffer.prepare(room), std::move(on_read));
    } else {
      conn->socket.async_read_some(conn->buffer.prepare(room), std::move(on_read));
    }
  }

  void parse(const ConnPtr& conn, beast::error_code ec) {
    auto& parser = *conn->parser;
    if (ec == asio::error::eof && parser.got_some()) {
      // A reply delimited by the end of the connection ends here.
      parser.put_eof(ec);
      if (!ec && parser.is_done()) {
        replied(conn);
        return;
      }
      failed_exchange(conn, ec ? ec : beast::error_code(http::error::partial_message));
      return;
    }
    if (ec) {
      failed_exchange(conn, ec);
      return;
    }
    while (conn->buffer.size() != 0 && !parser.is_done()) {
      const std::size_t used = parser.put(conn->buffer.data(), ec);
      conn->buffer.consume(used);
      if (ec == http::error::need_more) break;
      if (ec) {
        failed_exchange(conn, ec);
        return;
      }
      if (used == 0) break;
    }
    if (parser.is_done()) {
      replied(conn);
    } else {
      wait_readable(conn);
    }
  }

  void replied(const ConnPtr& conn) {
    auto& res = conn->parser->get();
    const int status = static_cast<int>(res.result_int());
    const bool keep = res.keep_alive();
    auto call = std::move(conn->call);
    if (call->response_headers != nullptr) copy_fields(res, *call->response_headers);
    // While the parser still holds the Content-Type it is read from.
    const beast::string_view content_type = res[http::field::content_type];
    const beast::string_view content_encoding = res[http::field::content_encoding];
    Result<std::string> result = client_->reply_result(
        status, std::string_view(content_type.data(), content_type.size()),
        std::string_view(content_encoding.data(), content_encoding.size()), std::move(res.body()), call->target);
    conn->parser.reset();
    conn->served++;
    if (keep) {
      reuse(conn);
    } else {
      close(*conn);
      start_waiting();
    }
    complete(std::move(call), std::move(result));
  }

  // A connection free again: the next waiting call, else the idle pool.
  void reuse(const ConnPtr& conn) {
    if (!waiting_.empty() && !stopping_) {
      auto next = std::move(waiting_.front());
      waiting_.pop_front();
      send(conn, std::move(next));
      return;
    }
    if (idle_.size() >= client_->options.max_idle_connections) {
      close(*conn);
      return;
    }
    conn->state = AsyncConn::State::idle;
    conn->idle_since = Clock::now();
    idle_.push_back(conn);
    arm(conn->idle_since + idle_timeout_);
  }

  void failed_exchange(const ConnPtr& conn, const beast::error_code& ec) {
    auto call = std::move(conn->call);
    const bool stale = conn->served > 0 && !conn->parser->got_some() && stale_connection_error(ec);
    close(*conn);
    if (stale && !call->resent) {
      // The server closed it while idle: the request was never read. Once,
      // on a fresh connection, as the blocking path does.
      call->resent = true;
      open(std::move(call));
      return;
    }
    start_waiting();
    const std::string target = what(*call);
    if (ec == http::error::body_limit) {
      complete(std::move(call), Error(Code::resource_exhausted,
                                      "reply from " + target + " exceeds the client's limit of " +
                                          std::to_string(client_->options.max_response_bytes) + " bytes"));
      return;
    }
    complete(std::move(call), Error(Code::unavailable, "call to " + target + " failed: " + ec.message()));
  }

  // Deadlines and idle connections: one timer, armed at the earliest
  // deadline or idle timeout it knows of. When it fires it fails what is
  // due, closes connections idle for idle_timeout_ and re-arms at the next
  // one; calls that finish in time cost nothing but the comparison here.
  void arm(Clock::time_point at) {
    if (timer_at_ && *timer_at_ <= at) return;
    timer_at_ = at;
    timer_.expires_at(at);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec == asio::error::operation_aborted || self->stopping_) return;
      self->timer_at_.reset();
      self->expire();
    });
  }

  void expire() {
    const auto now = Clock::now();
    std::vector<std::pair<std::unique_ptr<AsyncCall>, Error>> due;
    std::optional<Clock::time_point> next;
    auto later = [&](Clock::time_point at) {
      if (!next || at < *next) next = at;
    };
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if ((*it)->deadline && *(*it)->deadline <= now) {
        Error e = timed_out(**it);
        due.emplace_back(std::move(*it), std::move(e));
        it = waiting_.erase(it);
      } else {
        if ((*it)->deadline) later(*(*it)->deadline);
        ++it;
      }
    }
    std::vector<ConnPtr> expired;
    for (auto& [raw, conn] : live_) {
      if (conn->state == AsyncConn::State::connecting) {
        if (conn->connect_limit <= now) {
          expired.push_back(conn);
        } else {
          later(conn->connect_limit);
        }
      } else if (conn->state == AsyncConn::State::busy && conn->call->deadline) {
        if (*conn->call->deadline <= now) {
          expired.push_back(conn);
        } else {
          later(*conn->call->deadline);
        }
      }
    }
    // Oldest first: a connection goes back to the end of idle_ and is taken
    // from there.
    auto fresh = idle_.begin();
    while (fresh != idle_.end() && (*fresh)->idle_since + idle_timeout_ <= now) close(**fresh++);
    idle_.erase(idle_.begin(), fresh);
    if (!idle_.empty()) later(idle_.front()->idle_since + idle_timeout_);
    for (ConnPtr& conn : expired) {
      auto call = std::move(conn->call);
      Error e = timed_out(*call);
      if (conn->state == AsyncConn::State::connecting) {
        const std::string where = client_->where();
        e = conn->connect_limit_is_deadline
                ? Error(Code::deadline_exceeded, "connecting to " + where + " did not finish before the call's deadline")
                : Error(Code::unavailable, "connecting to " + where + " timed out after " +
                                               std::to_string(client_->options.connect_timeout.count()) + " ms");
      }
      close(*conn);
      due.emplace_back(std::move(call), std::move(e));
    }
    if (next) arm(*next);
    start_waiting();
    for (auto& [call, error] : due) complete(std::move(call), std::move(error));
  }

  std::shared_ptr<ClientEndpoint> client_;
  asio::io_context& ioc_;
  const std::chrono::milliseconds idle_timeout_;
  asio::steady_timer timer_;
  tcp::resolver resolver_;
  std::optional<tcp::resolver::results_type> numeric_;  // the host is an address

  std::mutex mu_;
  std::vector<std::unique_ptr<AsyncCall>> incoming_;  // guarded by mu_
  bool drain_posted_ = false;                         // guarded by mu_
  bool closed_ = false;                               // guarded by mu_

  // Loop thread only.
  std::deque<std::unique_ptr<AsyncCall>> waiting_;
  std::unordered_map<AsyncConn*, ConnPtr> live_;  // connecting, busy or idle
  std::vector<ConnPtr> idle_;
  std::optional<Clock::time_point> timer_at_;
  bool stopping_ = false;
};

AsyncPool::AsyncPool(std::shared_ptr<ClientEndpoint> endpoint, EventLoop& loop,
                     std::chrono::milliseconds idle_timeout)
    : engine_(std::make_shared<Engine>(std::move(endpoint), loop, idle_timeout)), loop_(loop) {}

AsyncPool::~AsyncPool() {
  engine_->close();
  if (loop_.on_loop_thread()) {
    engine_->shut_down();
    return;
  }
  std::promise<void> done;
  asio::post(loop_.context(), [engine = engine_, &done] {
    engine->shut_down();
    done.set_value();
  });
  done.get_future().wait();
}

void AsyncPool::submit(std::unique_ptr<AsyncCall> call) { engine_->submit(std::move(call)); }

}  // namespace dispatch::transport
