// DeadlineSocket's system calls (deadline_socket.h says what it is for).
#include "transport/deadline_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>

namespace dispatch::transport {
namespace {

// errno, as the error code Beast's stream concept reports.
boost::system::error_code last_error() { return boost::system::error_code(errno, boost::system::system_category()); }

}  // namespace

std::size_t DeadlineSocket::receive(void* data, std::size_t size, boost::system::error_code& ec) {
  ec = {};
  if (size == 0) return 0;
  for (;;) {
    int flags = 0;
    if (!deadline_) {
      if (!set_receive_timeout(Clock::duration::zero(), ec)) return 0;
    } else {
      const auto left = *deadline_ - Clock::now();
      if (left <= Clock::duration::zero()) {
        ec = boost::beast::error::timeout;
        return 0;
      }
      if (left >= kBlockingReadAtLeast) {
        // A timeout already set stays while it ends early enough, and
        // not so early that a slow answer would wake the read many times.
        const bool fits = receive_timeout_ > Clock::duration::zero() && receive_timeout_ <= left - kTickSlack &&
                          receive_timeout_ >= left / 2;
        if (!fits && !set_receive_timeout(left - std::max(left / 16, kTickSlack), ec)) return 0;
      } else {
        if (!wait(POLLIN, ec)) return 0;
        flags = MSG_DONTWAIT;
      }
    }
    const ssize_t n = ::recv(fd_, data, size, flags);
    if (n > 0) return static_cast<std::size_t>(n);
    if (n == 0) {
      ec = boost::asio::error::eof;
      return 0;
    }
    // EAGAIN: SO_RCVTIMEO ran out before the deadline (or poll() woke for
    // nothing); the deadline is checked again above.
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    ec = last_error();
    return 0;
  }
}

std::size_t DeadlineSocket::send(const iovec* iov, std::size_t count, boost::system::error_code& ec) {
  ec = {};
  if (count == 0) return 0;
  msghdr message{};
  message.msg_iov = const_cast<iovec*>(iov);
  message.msg_iovlen = count;
  for (;;) {
    const ssize_t n = ::sendmsg(fd_, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      ec = last_error();
      return 0;
    }
    if (!wait(POLLOUT, ec)) return 0;
  }
}

// Sets SO_RCVTIMEO to `timeout` (zero: none) unless it is that already.
bool DeadlineSocket::set_receive_timeout(Clock::duration timeout, boost::system::error_code& ec) {
  if (timeout == receive_timeout_) return true;
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
  timeval tv{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
  if (::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
    ec = last_error();
    return false;
  }
  receive_timeout_ = std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(us));
  return true;
}

// Until the socket is ready for `events`: false with ec = timeout when the
// deadline passes first.
bool DeadlineSocket::wait(short events, boost::system::error_code& ec) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline_) {
      const auto left = *deadline_ - Clock::now();
      if (left <= Clock::duration::zero()) {
        ec = boost::beast::error::timeout;
        return false;
      }
      timeout_ms = static_cast<int>(
          std::min<int64_t>(std::chrono::ceil<std::chrono::milliseconds>(left).count(), 1 << 30));
    }
    pollfd p{fd_, events, 0};
    const int ready = ::poll(&p, 1, timeout_ms);
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) {
      ec = last_error();
      return false;
    }
    // Timed out (checked again at the top) or interrupted.
  }
}

}  // namespace dispatch::transport
