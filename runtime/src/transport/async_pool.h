// The connections behind one HttpClient's call_async(), on an event loop
// it may share with other clients: its non-blocking keep-alive connections
// (one call in flight on each, at most options.max_connections open; TLS on
// https://), the calls waiting for one, and their deadlines. A call is
// serialized on the caller's thread and queued; one wake-up hands the loop
// every call queued since its last round. The loop writes the request,
// waits for the reply in epoll, feeds Beast's response_parser, enforces
// deadlines and the idle timeout with one lazily re-armed timer and runs
// the callbacks. A client with nothing to do costs its loop nothing: no
// socket once its idle connections timed out, and no timer once the
// deadlines of its last calls have passed.
//
// Not for: building requests (http_client.cc), the blocking call path
// (http_client.cc), or the threads (event_loop.h).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "dispatch/core/client.h"
#include "transport/client_endpoint.h"
#include "transport/event_loop.h"

namespace dispatch::transport {

// One call_async() call as the event loop sees it.
struct AsyncCall {
  std::string bytes;   // the serialized request
  std::string target;  // path with the URL's prefix, for messages
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<ClientEndpoint::Clock::time_point> deadline;
  bool resent = false;  // already re-sent once after meeting a stale connection
  // CallOptions::response_headers: filled from the reply before `done`.
  std::vector<std::pair<std::string, std::string>>* response_headers = nullptr;
  Client::Callback done;
};

class AsyncPool {
 public:
  // Nothing runs on `loop` until the first submit(); `loop` must outlive
  // the pool and whatever the pool left queued on it. A connection idle for
  // `idle_timeout` is closed.
  AsyncPool(std::shared_ptr<ClientEndpoint> endpoint, EventLoop& loop, std::chrono::milliseconds idle_timeout);
  // Completes every call not yet answered with `canceled` and closes every
  // connection, on the loop thread, before it returns. Must not run inside
  // a callback of this pool (nor, to be safe, of any pool of its loops).
  ~AsyncPool();
  AsyncPool(const AsyncPool&) = delete;
  AsyncPool& operator=(const AsyncPool&) = delete;

  // Any thread. Queues the call; only the first call queued since the loop's
  // last round wakes it. The callback runs on the loop thread.
  void submit(std::unique_ptr<AsyncCall> call);

 private:
  class Engine;
  std::shared_ptr<Engine> engine_;
  EventLoop& loop_;
};

}  // namespace dispatch::transport
