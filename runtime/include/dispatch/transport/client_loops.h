// dispatch::ClientLoops: event-loop threads that HttpClients share for their
// call_async() calls, so that calls to any number of servers need a fixed
// number of threads. Each client keeps its own connections, its own
// max_connections and its own queue of waiting calls; the loops only run
// them. A client is placed on one loop by its first call_async() (the loop
// with the fewest clients; a new one while fewer than `threads` run) and
// stays there, so one busy client has a thread's worth of work to itself
// only while it does not share its loop with another busy one.
//
//   auto loops = std::make_shared<dispatch::ClientLoops>();
//   dispatch::HttpClientOptions options;
//   options.loops = loops;
//   dispatch::HttpClient a("http://10.0.0.1:8000", options), b("https://b.example", options);
//
// Callbacks of every client on a loop run on its thread, one at a time: a
// callback that blocks delays every call of every client on that loop.
// Clients hold the loops by shared_ptr; the threads stop when the last
// holder lets go (never from one of their own callbacks).
//
// Not for: the blocking HttpClient::call(), which runs on the caller's
// thread; running user work (the loops run callbacks, not jobs).
// Public header: compiles as C++17 and C++20; no Boost (pimpl).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

namespace dispatch {

struct ClientLoopsOptions {
  // Event-loop threads (named dispatch-client); 0: one per core. Each starts
  // when a client first needs it, so a group nobody calls through has none.
  std::size_t threads = 0;
  // A keep-alive connection that carries no call for this long is closed,
  // so a client with nothing to do holds no socket. Shorter than the usual
  // server idle timeouts (dispatch::Server's 60 s), so that the client,
  // not the server, closes a connection it no longer needs.
  std::chrono::milliseconds idle_timeout{30'000};
};

class HttpClient;

class ClientLoops {
 public:
  explicit ClientLoops(ClientLoopsOptions options = {});
  // Runs what its clients left queued (nothing but the completion of
  // cancelled operations) and joins the threads.
  ~ClientLoops();
  ClientLoops(const ClientLoops&) = delete;
  ClientLoops& operator=(const ClientLoops&) = delete;

  // The options with `threads` resolved (never 0).
  const ClientLoopsOptions& options() const noexcept;

 private:
  friend class HttpClient;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispatch
