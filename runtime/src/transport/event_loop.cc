// The event-loop thread (event_loop.h).
#include "transport/event_loop.h"

#include "core/thread_name.h"

namespace dispatch::transport {

EventLoop::EventLoop() : work_(ioc_.get_executor()) {
  thread_ = std::thread([this] {
    // Named for top -H, perf and gdb, like the server's threads.
    detail::name_this_thread("dispatch-client");
    ioc_.run();
  });
}

EventLoop::~EventLoop() {
  work_.reset();
  thread_.join();
}

}  // namespace dispatch::transport
