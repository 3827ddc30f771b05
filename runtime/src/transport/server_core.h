// What a dispatch::Server shares with the connections it accepted: its
// lanes (the I/O threads and their io_contexts), options, request handler,
// worker pool, watchdog state, connection gauges and the record of open
// connections that drain walks. http_server.cc runs it (start, accept,
// watchdog, drain); http1_session.cc serves the connections.
//
// Not for: what a request is answered with (request_handler.h) or the
// protocols on a connection (http1_session.h, http2_connection.h).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "dispatch/core/service.h"
#include "dispatch/metrics/registry.h"
#include "dispatch/transport/server.h"
#include "transport/request_handler.h"
#include "transport/waiting_calls.h"

namespace dispatch::transport {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// A connection the server keeps a record of, to drain it: an HTTP/1.1
// session, which stays the record when it hands its socket to HTTP/2.
// Each call on the connection's strand (executor()).
class Connection {
 public:
  virtual ~Connection() = default;
  // Serves the connection.
  virtual void start() = 0;
  // Answers 503 and closes: the server is at max_connections.
  virtual void reject_over_limit() = 0;
  // No new requests; `force`: close now, else after the call in flight.
  virtual void begin_drain(bool force) = 0;
  virtual asio::any_io_executor executor() = 0;
};

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
  // The threads for calls of functions that wait (Method::waits), made as
  // such calls come (transport/waiting_calls.h).
  std::unique_ptr<WaitingCalls> waiting;  // set by start()
  // Runs a call that is not run on its I/O thread: on the workers, or with
  // the waiting calls (`place`, RequestHandler::place).
  void run_off_lane(RequestHandler::Place place, std::function<void()> work);
  std::thread watchdog;
  // True while the watchdog sleeps because no call has run inline for a
  // while; the first inline call after that wakes it (see watch()).
  std::atomic<bool> watchdog_parked{false};
  std::vector<std::thread> rescuers;  // guarded by mu
  std::atomic<bool> stopping{false};
  std::atomic<uint16_t> bound_port{0};
  // Connections open now by protocol, and accepted in all (set by start()).
  metrics::Gauge* open_http1 = nullptr;
  metrics::Gauge* open_http2 = nullptr;
  metrics::Counter* accepted = nullptr;

  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> sessions;  // guarded by mu
  bool started = false;       // guarded by mu
  bool draining = false;      // guarded by mu
  bool force_close = false;   // guarded by mu
  bool threads_joined = false;  // guarded by mu
  std::once_flag shutdown_once;

  Result<void> start();
  void accept();
  void begin_drain(bool force);
  void wait_and_shutdown();
  void session_closed(Connection* s) {
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

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

}  // namespace dispatch::transport
