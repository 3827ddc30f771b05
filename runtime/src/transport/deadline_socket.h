// A plain connection's blocking socket as a Beast synchronous stream whose
// reads and writes give up at a deadline, with no more system calls than
// the exchange needs; HttpClient::call() runs its write and read on it.
// - A write is a sendmsg with MSG_DONTWAIT; only when the socket's buffer is
//   full does it wait in poll() for room, up to the deadline.
// - A read is one recv that blocks: an answer is never there the moment the
//   request has gone, and polling first would cost a system call per read.
//   The deadline is kept with SO_RCVTIMEO, set a margin short of it and left
//   as it is while it ends early enough (and not before half of what is
//   left), so calls with the same timeout set it once per connection. When
//   it fires before the deadline the read goes on with what is left; the
//   last kBlockingReadAtLeast before the deadline are waited for in poll(),
//   exactly (SO_RCVTIMEO counts in scheduler ticks, which may be 10 ms).
//
// The system calls are in deadline_socket.cc, Boost-free apart from the
// error codes; the header only adapts buffer sequences to them.
// Not for: TLS (a TLS connection's calls run on its own io_context) or
// non-blocking sockets (the event loop's connections, async_pool.cc).
#pragma once

#include <sys/uio.h>

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <cstddef>
#include <optional>

namespace dispatch::transport {

class DeadlineSocket {
 public:
  using Clock = std::chrono::steady_clock;

  // `fd`: a connected blocking stream socket. `receive_timeout`: its
  // SO_RCVTIMEO as last set through a DeadlineSocket (zero: none), kept by
  // the caller with the connection so that the next call finds it.
  // `deadline`: none waits for as long as it takes.
  DeadlineSocket(int fd, Clock::duration& receive_timeout, std::optional<Clock::time_point> deadline)
      : fd_(fd), receive_timeout_(receive_timeout), deadline_(deadline) {}

  // Bytes received into [data, data + size), at least one; or 0 with `ec`:
  // beast::error::timeout at the deadline, asio::error::eof when the peer
  // closed, else the system's error.
  std::size_t receive(void* data, std::size_t size, boost::system::error_code& ec);
  // Bytes sent from the first `count` of `iov`, at least one; or 0 with
  // `ec` as for receive().
  std::size_t send(const iovec* iov, std::size_t count, boost::system::error_code& ec);

  // Beast's SyncReadStream and SyncWriteStream.
  template <typename Buffers>
  std::size_t read_some(const Buffers& buffers, boost::system::error_code& ec) {
    ec = {};
    // Beast reads into one buffer (a flat_buffer's free space).
    const auto it = boost::asio::buffer_sequence_begin(buffers);
    if (it == boost::asio::buffer_sequence_end(buffers)) return 0;
    const boost::asio::mutable_buffer buffer = *it;
    return receive(buffer.data(), buffer.size(), ec);
  }
  template <typename Buffers>
  std::size_t write_some(const Buffers& buffers, boost::system::error_code& ec) {
    ec = {};
    iovec iov[kMaxIov];
    std::size_t count = 0;
    auto it = boost::asio::buffer_sequence_begin(buffers);
    const auto end = boost::asio::buffer_sequence_end(buffers);
    for (; it != end && count < kMaxIov; ++it) {  // the rest goes in the next write_some
      const boost::asio::const_buffer b = *it;
      if (b.size() != 0) iov[count++] = iovec{const_cast<void*>(b.data()), b.size()};
    }
    if (count == 0) return 0;
    return send(iov, count, ec);
  }
  // The throwing forms the stream concepts ask for.
  template <typename Buffers>
  std::size_t read_some(const Buffers& buffers) {
    boost::system::error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <typename Buffers>
  std::size_t write_some(const Buffers& buffers) {
    boost::system::error_code ec;
    const std::size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  static constexpr std::size_t kMaxIov = 16;
  // Below this much time left, a read waits in poll() rather than under
  // SO_RCVTIMEO.
  static constexpr Clock::duration kBlockingReadAtLeast = std::chrono::milliseconds(100);
  // More than a scheduler tick at the slowest common HZ (100), by which
  // SO_RCVTIMEO may run past what it was set to.
  static constexpr Clock::duration kTickSlack = std::chrono::milliseconds(20);

 private:
  bool set_receive_timeout(Clock::duration timeout, boost::system::error_code& ec);
  bool wait(short events, boost::system::error_code& ec);

  int fd_;
  Clock::duration& receive_timeout_;
  std::optional<Clock::time_point> deadline_;
};

}  // namespace dispatch::transport
