// WaitingCalls: the threads a server runs the calls of functions that wait
// on (Method::waits, such as the scheduler's Get with wait_ms). A thread is
// made only when a call comes and every thread made so far is busy, up to
// a maximum; past it, calls queue for the first thread that is free. A
// server that never gets such a call has no thread for them, and one that
// does keeps as many as were ever busy at once (they are cheap while they
// sleep). A thread that hands its answer over (writes it, or posts it to
// its connection) calls finishing() first and counts as free from then:
// the client's next call, which the answer may prompt at once, waits the
// few microseconds until that thread is back rather than making another.
//
// Not for: calls that work (the server's workers), or choosing which calls
// wait (RequestHandler::place).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dispatch::transport {

class WaitingCalls {
 public:
  explicit WaitingCalls(std::size_t max_threads);
  ~WaitingCalls();  // join()
  WaitingCalls(const WaitingCalls&) = delete;
  WaitingCalls& operator=(const WaitingCalls&) = delete;

  // Runs `work` on a free thread, a new one, or the first to be free.
  void post(std::function<void()> work);
  // Runs what is queued, then ends the threads and waits for them; post()
  // after it runs nothing.
  void join();

  // Called by a call on one of these threads just before it hands its
  // answer over: the thread counts as free from then, and takes the next
  // queued call when it is back. A no-op on any other thread, and after
  // the first call within one piece of work.
  static void finishing();

  std::size_t threads() const;
  std::size_t idle_threads() const;

 private:
  void serve();

  const std::size_t max_threads_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  std::vector<std::thread> threads_;         // guarded by mu_
  std::size_t idle_ = 0;                     // guarded by mu_
  std::size_t finishing_ = 0;                // guarded by mu_: called finishing(), not back yet
  bool stopping_ = false;                    // guarded by mu_
};

}  // namespace dispatch::transport
