// The event-loop threads behind HttpClient::call_async(): EventLoop is one
// thread running one Asio io_context (concurrency hint 1: no locking inside
// Asio), named dispatch-client for top -H, perf and gdb; ClientLoops::Impl
// is a group of them that clients are placed on (dispatch/transport/
// client_loops.h), started as clients first need them. The group also
// keeps the TLS contexts its clients share.
//
// Not for: what runs on a loop (async_pool.h) or blocking work: everything
// on a loop shares its one thread.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dispatch/transport/client_loops.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace dispatch {
namespace transport {

class EventLoop {
 public:
  // Starts the thread.
  EventLoop();
  // Lets the loop run what is queued and what that queues in turn, until
  // nothing is left, then joins it. Must not run on the loop's thread.
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  boost::asio::io_context& context() noexcept { return ioc_; }
  bool on_loop_thread() const noexcept { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  boost::asio::io_context ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

}  // namespace transport

struct ClientLoops::Impl {
  explicit Impl(ClientLoopsOptions o);

  // The loop for a client's first call_async(): one without clients if
  // there is one, else a new one while fewer than options.threads run, else
  // the one with the fewest clients. The client stays on it until detach().
  transport::EventLoop& attach();
  void detach(transport::EventLoop& loop);

  using TlsContext = std::shared_ptr<boost::asio::ssl::context>;
  // The TLS context of the clients that verify servers the same way (on or
  // off, with the same extra CA file), made by `make` for the first: a
  // context holds the system's CA certificates, too much to keep one per
  // client when a scheduler calls thousands of https endpoints. It lives
  // while a client holds it.
  TlsContext tls_context(bool verify, const std::string& ca_file, const std::function<TlsContext()>& make);

  ClientLoopsOptions options;

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<transport::EventLoop>> loops_;  // guarded by mu_; destroyed (joined) last
  std::vector<std::size_t> clients_;                          // guarded by mu_: per loop
  std::map<std::pair<bool, std::string>, std::weak_ptr<boost::asio::ssl::context>> tls_;  // guarded by mu_
};

}  // namespace dispatch
