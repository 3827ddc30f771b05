// The event-loop threads and the group clients share (event_loop.h).
#include "transport/event_loop.h"

#include <algorithm>
#include <cassert>

#include "core/thread_name.h"

namespace dispatch {
namespace transport {

EventLoop::EventLoop() : work_(ioc_.get_executor()) {
  thread_ = std::thread([this] {
    // Named for top -H, perf and gdb, like the server's threads.
    detail::name_this_thread("dispatch-client");
    ioc_.run();
  });
}

EventLoop::~EventLoop() {
  assert(!on_loop_thread() && "an event loop cannot be stopped from one of its own callbacks");
  work_.reset();
  thread_.join();
}

}  // namespace transport

ClientLoops::Impl::Impl(ClientLoopsOptions o) : options(o) {
  if (options.threads == 0) options.threads = std::max(1u, std::thread::hardware_concurrency());
}

transport::EventLoop& ClientLoops::Impl::attach() {
  std::lock_guard lock(mu_);
  auto fewest = std::min_element(clients_.begin(), clients_.end());
  if ((fewest == clients_.end() || *fewest != 0) && loops_.size() < options.threads) {
    loops_.push_back(std::make_unique<transport::EventLoop>());
    clients_.push_back(0);
    fewest = clients_.end() - 1;
  }
  ++*fewest;
  return *loops_[static_cast<std::size_t>(fewest - clients_.begin())];
}

void ClientLoops::Impl::detach(transport::EventLoop& loop) {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    if (loops_[i].get() == &loop) {
      assert(clients_[i] > 0);
      --clients_[i];
      return;
    }
  }
  assert(false && "detach() of a loop this group does not have");
}

ClientLoops::Impl::TlsContext ClientLoops::Impl::tls_context(bool verify, const std::string& ca_file,
                                                             const std::function<TlsContext()>& make) {
  std::lock_guard lock(mu_);
  auto& slot = tls_[{verify, ca_file}];
  if (TlsContext shared = slot.lock()) return shared;
  TlsContext made = make();  // may throw (an unreadable ca_file): nothing is kept then
  slot = made;
  return made;
}

ClientLoops::ClientLoops(ClientLoopsOptions options) : impl_(std::make_unique<Impl>(options)) {}
ClientLoops::~ClientLoops() = default;
const ClientLoopsOptions& ClientLoops::options() const noexcept { return impl_->options; }

}  // namespace dispatch
