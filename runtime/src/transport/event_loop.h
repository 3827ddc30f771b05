// The event-loop threads behind HttpClient::call_async(): EventLoop is one
// thread running one Asio io_context (concurrency hint 1: no locking inside
// Asio), named dispatch-client for top -H, perf and gdb; ClientLoops::Impl
// is a group of them that clients are placed on (dispatch/transport/
// client_loops.h), started as clients first need them.
//
// Not for: what runs on a loop (async_pool.h) or blocking work: everything
// on a loop shares its one thread.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "dispatch/transport/client_loops.h"

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

  ClientLoopsOptions options;

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<transport::EventLoop>> loops_;  // guarded by mu_; destroyed (joined) last
  std::vector<std::size_t> clients_;                          // guarded by mu_: per loop
};

}  // namespace dispatch
