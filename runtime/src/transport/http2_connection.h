// One HTTP/2 connection of dispatch::Server: the socket I/O around an
// Http2Session and its GrpcCalls. http1_session.cc hands a connection over
// when its first bytes are the HTTP/2 preface (prior knowledge, h2c); from
// then on everything here runs on that connection's strand, on the I/O
// thread it was given, and quick calls run inline as HTTP/1.1 ones do.
//
// Timeouts: a connection with no stream waiting for the peer is closed
// after idle_timeout without a byte from it; one whose streams wait for
// request bytes, after read_timeout without one. A request must also
// arrive whole within read_timeout of its headers, however the peer spaces
// its bytes (PINGs, a DATA byte now and then): past it the stream is
// answered DEADLINE_EXCEEDED and the connection goes on. Writes that the peer does not read
// stop the reading (at 1 MiB queued), so a peer cannot make the server
// buffer its answers without bound.
//
// Not for: HTTP/2 framing (http2_session.h) or gRPC semantics (grpc_calls.h).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "transport/grpc_calls.h"
#include "transport/http2_session.h"
#include "transport/request_handler.h"

namespace dispatch::transport {

// What an HTTP/2 connection needs from the server that accepted it.
class ConnectionHost {
 public:
  virtual ~ConnectionHost() = default;
  virtual const RequestHandler& handler() const = 0;
  // True when a quick call may run on the calling I/O thread now (inline
  // calls are on, and this is the lane's own thread, not a rescue thread).
  virtual bool may_run_inline() const = 0;
  // Runs a quick call on this thread, with the watchdog's bookkeeping.
  virtual void run_inline(const std::function<void()>& call) = 0;
  // Runs `work` on the worker pool, or on the pool for waiting calls
  // (`place`: workers or waiting).
  virtual void run_on(RequestHandler::Place place, std::function<void()> work) = 0;
  // The connection ended (for the connection gauges).
  virtual void closed() = 0;
};

class Http2Connection final : public std::enable_shared_from_this<Http2Connection>, private GrpcCalls::Host {
 public:
  // `socket`'s executor is the connection's strand. `owner` is kept until
  // the connection ends (the server's record of it).
  Http2Connection(boost::asio::ip::tcp::socket socket, std::shared_ptr<ConnectionHost> host,
                  std::shared_ptr<void> owner);
  ~Http2Connection();

  // On the strand: serves, starting with `preread` (bytes already read).
  void start(std::string preread);
  // On the strand: GOAWAY, let running calls answer, then close; `force`
  // closes at once.
  void begin_drain(bool force);

 private:
  void run(int32_t stream, RequestHandler::Place place, std::function<GrpcAnswer()> call) override;
  void read();
  void on_bytes(std::string_view bytes);
  void flush();
  void after_write(boost::system::error_code ec);
  void arm_timer(std::chrono::steady_clock::time_point when);
  void on_timer();
  void close();

  boost::asio::ip::tcp::socket socket_;
  std::shared_ptr<ConnectionHost> host_;
  std::shared_ptr<void> owner_;
  const RequestHandler& handler_;
  GrpcCalls calls_;  // holds a reference to session_, used only after both exist
  Http2Session session_;
  std::array<char, 16 * 1024> read_buffer_{};
  std::string pending_;  // taken from the session, not yet being written
  std::string writing_;  // the asynchronous write in flight
  bool write_in_flight_ = false;
  bool reading_ = false;
  bool read_paused_ = false;
  bool close_when_written_ = false;
  bool draining_ = false;
  bool closed_ = false;
  boost::asio::steady_timer timer_;
  bool timer_armed_ = false;
  std::chrono::steady_clock::time_point timer_expiry_;
  uint64_t timer_generation_ = 0;  // a wait replaced by an earlier one ignores its wake-up
  std::chrono::steady_clock::time_point last_read_;
};

}  // namespace dispatch::transport
