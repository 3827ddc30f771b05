// The floor of the transport benchmark: plain TCP ping-pong over blocking
// sockets, one thread per connection on both sides, length-prefixed frames
// (4-byte little-endian length, then the payload) echoed back unchanged. No
// HTTP, no protobuf, no dispatch: what any RPC system over TCP pays at least.
// The add row sends the 16 bytes of two int64; the echo row 4 KiB.
//
// Not for: real use; it trusts its peer (a frame length over 1 MiB is refused).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "transport_systems.h"

namespace bench {
namespace {

[[noreturn]] void fail_errno(const std::string& what) {
  throw std::runtime_error("tcp: " + what + ": " + std::strerror(errno));
}

void set_nodelay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) fail_errno("TCP_NODELAY");
}

// False on orderly EOF before the first byte; throws on errors and short reads.
bool read_exact(int fd, char* data, std::size_t size) {
  std::size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd, data + got, size - got);
    if (n == 0) {
      if (got == 0) return false;
      throw std::runtime_error("tcp: peer closed in the middle of a frame");
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_errno("read");
    }
    got += static_cast<std::size_t>(n);
  }
  return true;
}

void write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_errno("write");
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

std::string frame(const std::string& payload) {
  std::uint32_t n = static_cast<std::uint32_t>(payload.size());
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + payload;
}

// Reads one frame into `payload`; false on EOF between frames.
bool read_frame(int fd, std::string& payload) {
  unsigned char header[4];
  if (!read_exact(fd, reinterpret_cast<char*>(header), 4)) return false;
  std::uint32_t n = header[0] | header[1] << 8 | header[2] << 16 | std::uint32_t{header[3]} << 24;
  if (n > (1u << 20)) throw std::runtime_error("tcp: frame of " + std::to_string(n) + " bytes refused");
  payload.resize(n);
  if (n > 0 && !read_exact(fd, payload.data(), n)) throw std::runtime_error("tcp: EOF after frame header");
  return true;
}

class TcpServer final : public BenchServer {
 public:
  TcpServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd_ < 0) fail_errno("socket");
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail_errno("bind");
    if (::listen(listen_fd_, 128) != 0) fail_errno("listen");
    socklen_t len = sizeof addr;
    if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) fail_errno("getsockname");
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~TcpServer() override {
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(listen_fd_);
    std::vector<std::thread> workers;
    {
      std::lock_guard lock(mu_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
      workers.swap(workers_);
    }
    for (auto& w : workers) w.join();
  }

  int port() const override { return port_; }

 private:
  void accept_loop() {
    for (;;) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // shut down
      }
      set_nodelay(fd);
      std::lock_guard lock(mu_);
      open_fds_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    std::string payload;
    try {
      while (read_frame(fd, payload)) {
        std::string out = frame(payload);
        write_all(fd, out.data(), out.size());
      }
    } catch (const std::exception&) {
      // The client went away mid-frame or the server is stopping; either way
      // this connection is done and the others keep serving.
    }
    std::lock_guard lock(mu_);
    std::erase(open_fds_, fd);
    ::close(fd);
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> open_fds_;
  std::vector<std::thread> workers_;
};

class TcpConnection final : public Connection {
 public:
  TcpConnection(int port, std::string payload) : request_(frame(payload)), expected_(std::move(payload)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) fail_errno("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      int saved = errno;
      ::close(fd_);
      errno = saved;
      fail_errno("connect to 127.0.0.1:" + std::to_string(port));
    }
    set_nodelay(fd_);
  }
  ~TcpConnection() override { ::close(fd_); }

  void call() override {
    write_all(fd_, request_.data(), request_.size());
    if (!read_frame(fd_, reply_)) throw std::runtime_error("tcp: server closed the connection");
    if (reply_ != expected_) throw std::runtime_error("tcp: echoed frame differs from the one sent");
  }

 private:
  int fd_ = -1;
  std::string request_;
  std::string expected_;
  std::string reply_;
};

std::string add_payload() {
  // Two int64 (40 and 2), little-endian: the size of add's arguments.
  std::string out(16, '\0');
  out[0] = 40;
  out[8] = 2;
  return out;
}

}  // namespace

std::unique_ptr<BenchServer> serve_tcp() { return std::make_unique<TcpServer>(); }

ConnectionFactory connect_tcp(int port, Payload payload) {
  return [port, payload](int) -> std::unique_ptr<Connection> {
    return std::make_unique<TcpConnection>(port, payload == Payload::add ? add_payload() : echo_payload());
  };
}

}  // namespace bench
