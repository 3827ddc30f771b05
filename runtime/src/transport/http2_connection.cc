// Http2Connection: reads into the session, runs calls, writes what the
// session has to send (see the header).
#include "transport/http2_connection.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/write.hpp>

#include "transport/waiting_calls.h"

namespace dispatch::transport {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// Answers queued for a peer that does not read: past this, stop reading it.
constexpr std::size_t kMaxQueuedOutput = 1 << 20;

Http2Limits limits_from(const ServerOptions& o) {
  Http2Limits l;
  l.max_concurrent_streams = o.max_concurrent_streams;
  l.max_header_bytes = o.max_header_bytes;
  // A whole message of the largest size may be buffered, and a little more.
  l.held_budget = o.max_body_bytes + (1u << 20);
  return l;
}

}  // namespace

Http2Connection::Http2Connection(asio::ip::tcp::socket socket, std::shared_ptr<ConnectionHost> host,
                                 std::shared_ptr<void> owner)
    : socket_(std::move(socket)),
      host_(std::move(host)),
      owner_(std::move(owner)),
      handler_(host_->handler()),
      calls_(session_, handler_, *this),
      session_(calls_, limits_from(handler_.options())),
      timer_(socket_.get_executor()) {}

Http2Connection::~Http2Connection() { host_->closed(); }

void Http2Connection::start(std::string preread) {
  last_read_ = Clock::now();
  arm_timer(last_read_ + handler_.options().idle_timeout);
  on_bytes(preread);
}

void Http2Connection::on_bytes(std::string_view bytes) {
  last_read_ = Clock::now();
  auto received = session_.receive(bytes);
  if (!received.ok()) {
    // nghttp2 has queued a GOAWAY saying why: send it, then close.
    const Logger& logger = handler_.options().logger;
    if (logger.enabled(LogLevel::debug)) logger.log(LogLevel::debug, "closing an HTTP/2 connection: " + received.error().message());
    close_when_written_ = true;
  }
  flush();
  if (closed_ || close_when_written_) return;
  // Streams still wait for request bytes: each must be whole within
  // read_timeout of its headers. The timer moves only when it was set
  // later than that (a wait of idle_timeout), not on every read.
  if (session_.open_streams() > calls_.held() + calls_.running()) arm_timer(last_read_ + handler_.options().read_timeout);
  if (pending_.size() + writing_.size() > kMaxQueuedOutput) {
    read_paused_ = true;
    return;
  }
  read();
}

void Http2Connection::read() {
  if (reading_ || closed_) return;
  reading_ = true;
  socket_.async_read_some(asio::buffer(read_buffer_),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                            self->reading_ = false;
                            if (self->closed_) return;
                            if (ec) return self->close();  // the peer went, or a forced drain
                            self->on_bytes(std::string_view(self->read_buffer_.data(), n));
                          });
}

void Http2Connection::flush() {
  if (closed_) return;
  session_.take_output(pending_);
  if (!write_in_flight_ && !pending_.empty()) {
    // The usual case: the socket takes it all now, with no trip through the
    // event loop (the socket is non-blocking).
    boost::system::error_code ec;
    const std::size_t n = socket_.write_some(asio::buffer(pending_), ec);
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return close();
    pending_.erase(0, n);
    if (!pending_.empty()) {
      writing_.swap(pending_);
      write_in_flight_ = true;
      asio::async_write(socket_, asio::buffer(writing_),
                        [self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->after_write(ec); });
      return;
    }
  }
  if (!write_in_flight_ && pending_.empty() &&
      (close_when_written_ || session_.done() ||
       (draining_ && session_.open_streams() == 0 && calls_.running() == 0))) {
    close();
  }
}

void Http2Connection::after_write(boost::system::error_code ec) {
  write_in_flight_ = false;
  writing_.clear();
  if (closed_) return;
  if (ec) return close();
  flush();
  if (read_paused_ && !closed_ && pending_.size() + writing_.size() <= kMaxQueuedOutput / 2) {
    read_paused_ = false;
    read();
  }
}

void Http2Connection::run(int32_t stream, RequestHandler::Place place, std::function<GrpcAnswer()> call) {
  if (place == RequestHandler::Place::io_thread && host_->may_run_inline()) {
    GrpcAnswer answer;
    host_->run_inline([&] { answer = call(); });
    calls_.deliver(stream, std::move(answer));
    return;  // written by the flush after this read
  }
  if (place == RequestHandler::Place::io_thread) place = RequestHandler::Place::workers;
  host_->run_on(place, [self = shared_from_this(), stream, call = std::move(call)]() mutable {
    GrpcAnswer answer = call();
    WaitingCalls::finishing();  // the client may call again before this thread is back
    asio::dispatch(self->socket_.get_executor(), [self, stream, answer = std::move(answer)]() mutable {
      self->calls_.deliver(stream, std::move(answer));
      self->flush();
    });
  });
}

void Http2Connection::begin_drain(bool force) {
  if (closed_) return;
  if (force) return close();
  if (draining_) return;
  draining_ = true;
  calls_.drain();
  session_.shut_down();
  flush();
}

// Fires, then looks at what is due; moved only to an earlier time.
void Http2Connection::arm_timer(Clock::time_point when) {
  if (timer_armed_ && timer_expiry_ <= when) return;
  timer_armed_ = true;
  timer_expiry_ = when;
  const uint64_t generation = ++timer_generation_;
  timer_.expires_at(when);  // ends a later wait with operation_aborted
  timer_.async_wait([self = shared_from_this(), generation](boost::system::error_code ec) {
    if (generation != self->timer_generation_) return;
    self->timer_armed_ = false;
    if (ec || self->closed_) return;
    self->on_timer();
  });
}

void Http2Connection::on_timer() {
  const ServerOptions& o = handler_.options();
  const auto now = Clock::now();
  const auto next_expiry = calls_.expire_unfinished(now, o.read_timeout);
  flush();  // the DEADLINE_EXCEEDED answers, if any
  if (closed_ || close_when_written_) return;
  if (next_expiry) arm_timer(*next_expiry);
  if (calls_.running() > 0) return arm_timer(now + o.idle_timeout);
  // Streams other than held Watch ones wait for the peer's bytes.
  const bool waiting_for_peer = session_.open_streams() > calls_.held();
  const auto limit = waiting_for_peer ? o.read_timeout : o.idle_timeout;
  if (now - last_read_ < limit) return arm_timer(last_read_ + limit);
  session_.shut_down();
  close_when_written_ = true;
  flush();
}

void Http2Connection::close() {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace dispatch::transport
