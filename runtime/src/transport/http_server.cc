// dispatch::Server on Asio: listening, the lanes (I/O threads) each
// accepted connection is given to in turn, the worker pool, the watchdog
// that lends a held lane another thread, and drain. Connections are served
// by http1_session.cc (HTTP/1.1, handing HTTP/2 over to
// http2_connection.cc); what a request is answered with is
// request_handler.cc's.
//
// Not for: the HTTP protocols (http1_session.cc, http2_connection.cc) or
// the server's options from the environment (server_options.cc).
#include "dispatch/transport/server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>
#include <csignal>
#include <string>

#include "core/thread_name.h"
#include "transport/http1_session.h"
#include "transport/protobuf_logs.h"
#include "transport/server_core.h"

namespace dispatch {
namespace transport {

Result<void> ServerCore::start() {
  {
    std::lock_guard lock(mu);
    if (started) return {};
    started = true;
  }
  if (!options.metrics) options.metrics = std::make_shared<metrics::Registry>();
  open_http1 = &options.metrics->gauge("dispatch_server_connections", "Connections open now, by protocol.",
                                       {{"protocol", "http1"}});
  open_http2 = &options.metrics->gauge("dispatch_server_connections", "Connections open now, by protocol.",
                                       {{"protocol", "http2"}});
  accepted = &options.metrics->counter("dispatch_server_connections_accepted_total", "Connections accepted.");
  handler.emplace(table, options);
  const std::string where = options.host + ":" + std::to_string(options.port);
  boost::system::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(options.host, std::to_string(options.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    std::lock_guard lock(mu);
    started = false;
    return Error(Code::unavailable, "cannot resolve listen address " + where + ": " + ec.message());
  }
  const tcp::endpoint endpoint = *endpoints.begin();
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::lock_guard lock(mu);
    started = false;  // nothing runs: stop()/drain() have nothing to wait for
    return Error(Code::unavailable, "cannot listen on " + where + ": " + ec.message());
  }
  bound_port = acceptor.local_endpoint().port();

  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  workers = std::make_unique<asio::thread_pool>(options.workers ? options.workers : cores);
  waiting = std::make_unique<WaitingCalls>(options.waiting_threads);
  // At least kMinIoThreads by default, even on fewer cores: while there are
  // no more connections than I/O threads, each connection has a thread of
  // its own, which is woken only by its peer, and the kernel runs the two
  // side by side on one CPU. A thread serving peers on both CPUs of a small
  // machine is woken across CPUs (an inter-processor interrupt, a VM exit on
  // a VM) for many of its calls. On the project's 2-core VM, 8 threads
  // instead of 2 served 16-25% more calls a second at 8 and 32 connections
  // and no fewer at 1 or 128 (docs/benchmarks.md). An idle I/O thread costs
  // a sleeping thread and three descriptors.
  constexpr std::size_t kMinIoThreads = 8;
  const std::size_t n_io = options.io_threads ? options.io_threads : std::max(cores, kMinIoThreads);
  for (std::size_t i = 0; i < n_io; ++i) {
    auto lane = std::make_unique<Lane>();
    // Asio opens an io_context's epoll, eventfd and timerfd descriptors with
    // its first I/O object; a timer makes that happen now, so every
    // descriptor the server keeps is open once start() returns (the soak
    // test's descriptor count, and EMFILE, are not met at a first connection).
    { asio::steady_timer open_reactor(lane->ioc); }
    lane->work.emplace(lane->ioc.get_executor());
    lane->thread = std::thread([l = lane.get(), i] {
      dispatch::detail::name_this_thread("dispatch-io-" + std::to_string(i));
      l->ioc.run();
    });
    lanes.push_back(std::move(lane));
  }
  work.emplace(ioc.get_executor());
  asio::post(ioc, [self = shared_from_this()] { self->accept(); });
  accept_thread = std::thread([this] {
    dispatch::detail::name_this_thread("dispatch-accept");
    ioc.run();
  });
  if (options.inline_limit.count() > 0) {
    watchdog = std::thread([this] {
      dispatch::detail::name_this_thread("dispatch-watch");
      watch();
    });
  }
  options.logger.log(LogLevel::info, "listening on http://" + options.host + ":" +
                                         std::to_string(bound_port.load()) + " (" +
                                         std::to_string(handler->function_count()) +
                                         (handler->function_count() == 1 ? " function)" : " functions)"));
  if (options.verifier) {
    options.logger.log(LogLevel::info, "verifying request signatures (RFC 9421, Ed25519)");
  } else if (options.warn_if_unverified) {
    options.logger.log(LogLevel::warn,
                       "DISPATCH_VERIFICATION_KEY is not set: requests are not verified, so anyone who can "
                       "reach this address can call its functions");
  }
  return {};
}

void ServerCore::run_off_lane(RequestHandler::Place place, std::function<void()> work) {
  if (place == RequestHandler::Place::waiting) return waiting->post(std::move(work));
  asio::post(*workers, [work = std::move(work)] {
    // asio::thread_pool makes its threads itself: each names itself at its
    // first call.
    thread_local const bool named = (dispatch::detail::name_this_thread("dispatch-worker"), true);
    (void)named;
    work();
  });
}

void ServerCore::accept() {
  Lane& lane = *lanes[next_lane++ % lanes.size()];
  acceptor.async_accept(asio::make_strand(lane.ioc), [self = shared_from_this(), &lane](boost::system::error_code ec,
                                                                                       tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
    if (!ec) {
      // Without TCP_NODELAY, Nagle holds a reply's segment until the client
      // ACKs the previous one, and the client's delayed ACK waits 40 ms.
      // Non-blocking (for synchronous calls only; asynchronous ones always
      // are): a worker's write of an answer must never wait for a slow reader.
      boost::system::error_code option_ec;
      socket.set_option(tcp::no_delay(true), option_ec);
      socket.non_blocking(true, option_ec);
      self->accepted->inc();
      self->open_http1->inc();
      auto session = make_http1_session(std::move(socket), self, lane);
      bool over_limit;
      {
        std::lock_guard lock(self->mu);
        over_limit = self->sessions.size() >= self->options.max_connections;
        self->sessions.emplace(session.get(), session);
      }
      asio::dispatch(session->executor(), [session, over_limit] {
        if (over_limit) {
          session->reject_over_limit();
        } else {
          session->start();
        }
      });
    } else {
      // EMFILE and friends: keep accepting; the log says why connections fail.
      self->options.logger.log(LogLevel::error, "accept failed: " + ec.message());
    }
    self->accept();
  });
}

// Looks at the lanes every tick; a lane whose thread has been in one call for
// longer than inline_limit gets a rescue thread that runs its io_context
// until the call returns. (The call's function has also been marked slow by
// then, so its later calls go to the workers: this happens about once per
// function that turns slow.)
void ServerCore::watch() {
  // While calls run inline: 200 wake-ups a second, little CPU, and a held
  // lane waits at most about inline_limit + 5 ms for its rescue. After
  // kParkAfter ticks without an inline call the watchdog parks, so an idle
  // server does not wake at all; the next inline call wakes it (one futex
  // wake per idle-to-busy transition, nothing per call).
  const auto tick = std::chrono::milliseconds(5);
  constexpr int kParkAfter = 20;
  const int64_t limit_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(options.inline_limit).count();
  int quiet_ticks = 0;
  uint64_t seen_calls = 0;
  std::unique_lock lock(mu);
  while (!stopping) {
    if (quiet_ticks >= kParkAfter) {
      watchdog_parked = true;
      bool running = false;
      for (auto& lane : lanes) running = running || lane->call_began.load() != 0;
      if (!running) cv.wait(lock, [this] { return stopping.load() || !watchdog_parked.load(); });
      watchdog_parked = false;
      quiet_ticks = 0;
    } else {
      cv.wait_for(lock, tick, [this] { return stopping.load(); });
    }
    if (stopping) return;
    const int64_t now = now_ns();
    uint64_t calls = 0;
    bool running = false;
    for (auto& lane : lanes) {
      calls += lane->inline_calls.load(std::memory_order_relaxed);
      running = running || lane->call_began.load(std::memory_order_relaxed) != 0;
    }
    quiet_ticks = (calls == seen_calls && !running) ? quiet_ticks + 1 : 0;
    seen_calls = calls;
    for (auto& owned : lanes) {
      Lane& lane = *owned;
      const int64_t began = lane.call_began.load(std::memory_order_acquire);
      if (began == 0 || now - began <= limit_ns || lane.rescued.exchange(true)) continue;
      if (options.logger.enabled(LogLevel::debug)) {
        options.logger.log(LogLevel::debug, "an I/O thread has been in one call for " +
                                                std::to_string((now - began) / 1'000'000) +
                                                " ms: lending its connections another thread");
      }
      rescuers.emplace_back([this, &lane, began] {
        dispatch::detail::name_this_thread("dispatch-rescue");
        while (!stopping && lane.call_began.load(std::memory_order_acquire) == began) {
          lane.ioc.run_one_for(std::chrono::milliseconds(5));
        }
        lane.rescued.store(false, std::memory_order_release);
      });
    }
  }
}

void ServerCore::begin_drain(bool force) {
  std::vector<std::shared_ptr<Connection>> live;
  bool first = false;
  {
    std::lock_guard lock(mu);
    if ((draining && !force) || threads_joined) return;
    first = !draining;
    draining = true;
    cv.notify_all();
    // Never started: nothing runs the io_context, so post nothing to it.
    if (!started) return;
    handler->set_draining();
    force_close = force_close || force;
    for (auto& [_, weak] : sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
    cv.notify_all();
  }
  options.logger.log(LogLevel::info, force ? "stopping: closing all connections"
                                           : "draining: no new connections; finishing in-flight calls");
  if (first && options.on_drain) options.on_drain();
  asio::post(ioc, [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor.close(ignored);
    if (self->signals) self->signals->cancel(ignored);
  });
  for (auto& s : live) {
    asio::post(s->executor(), [s, force] { s->begin_drain(force); });
  }
}

void ServerCore::wait_and_shutdown() {
  std::call_once(shutdown_once, [this] {
    {
      std::unique_lock lock(mu);
      if (!started) return;
      const bool drained = cv.wait_for(lock, options.drain_timeout, [this] { return sessions.empty(); });
      if (!drained) {
        lock.unlock();
        options.logger.log(LogLevel::warn, "drain timeout: closing the remaining connections");
        begin_drain(/*force=*/true);
        lock.lock();
        cv.wait_for(lock, std::chrono::seconds(5), [this] { return sessions.empty(); });
      }
    }
    // Workers first: a call still running posts its answer to its lane.
    if (workers) workers->join();
    if (waiting) waiting->join();
    std::vector<std::thread> lent;
    {
      std::lock_guard lock(mu);
      stopping = true;
      lent.swap(rescuers);
      cv.notify_all();
    }
    if (watchdog.joinable()) watchdog.join();
    {
      std::lock_guard lock(mu);
      for (auto& t : rescuers) lent.push_back(std::move(t));  // lent while we swapped
    }
    for (auto& t : lent) t.join();
    work.reset();
    ioc.stop();
    if (accept_thread.joinable()) accept_thread.join();
    for (auto& lane : lanes) {
      lane->work.reset();
      lane->ioc.stop();
      lane->thread.join();
    }
    // Run what the stop left queued (aborted reads, the acceptor's last
    // handler): their captures hold this Impl, and must not outlive it.
    ioc.restart();
    ioc.run();
    for (auto& lane : lanes) {
      lane->ioc.restart();
      lane->ioc.run();
    }
    std::lock_guard lock(mu);
    threads_joined = true;
    cv.notify_all();
  });
}

}  // namespace transport

struct Server::Impl : transport::ServerCore {
  using ServerCore::ServerCore;
};

Server::Server(const DispatchTable& table, ServerOptions options)
    : impl_(std::make_shared<Impl>(table, std::move(options))) {
  // Protobuf's own lines (a peer's string that is not UTF-8) in the
  // process's log format, not its own (transport/protobuf_logs.h).
  transport::route_protobuf_logs_once();
}

Server::~Server() { stop(); }

Result<void> Server::start() { return impl_->start(); }

uint16_t Server::port() const noexcept { return impl_->bound_port.load(); }

std::shared_ptr<metrics::Registry> Server::metrics() const {
  std::lock_guard lock(impl_->mu);
  return impl_->started ? impl_->options.metrics : nullptr;
}

void Server::handle_signals() {
  impl_->signals.emplace(impl_->ioc, SIGINT, SIGTERM);
  impl_->signals->async_wait([weak = std::weak_ptr<transport::ServerCore>(impl_)](boost::system::error_code ec, int signal) {
    if (ec) return;
    if (auto impl = weak.lock()) {
      impl->options.logger.log(LogLevel::info,
                               std::string("received ") + (signal == SIGTERM ? "SIGTERM" : "SIGINT"));
      impl->begin_drain(false);
    }
  });
}

Result<void> Server::run() {
  auto started = impl_->start();
  if (!started.ok()) return started;
  {
    std::unique_lock lock(impl_->mu);
    impl_->cv.wait(lock, [this] { return impl_->draining; });
  }
  impl_->wait_and_shutdown();
  impl_->options.logger.log(LogLevel::info, "stopped");
  return {};
}

void Server::drain() {
  impl_->begin_drain(false);
  impl_->wait_and_shutdown();
}

void Server::stop() {
  impl_->begin_drain(true);
  impl_->wait_and_shutdown();
}

}  // namespace dispatch
