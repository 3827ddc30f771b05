// One event-loop thread: an Asio io_context (concurrency hint 1: no
// locking inside Asio) run by a thread of its own, named dispatch-client for
// top -H, perf and gdb. HttpClient's call_async() connections live on one.
//
// Not for: what runs on it (async_pool.h) or blocking work: everything on
// the loop shares its one thread.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <thread>

namespace dispatch::transport {

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

}  // namespace dispatch::transport
