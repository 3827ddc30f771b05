// dispatch::Workflow<T>: a [[dispatch::function]] whose result type is a
// Workflow<T> is a durable workflow, a C++20 coroutine that calls other
// functions durably, waits for them, sleeps, and survives every restart of
// every process in between:
//
//   [[dispatch::function]] dispatch::Workflow<Receipt> checkout(const Order& order);
//
//   dispatch::Workflow<Receipt> checkout(const Order& order) {
//     Reservation r = co_await inventory::remote::reserve.call(order.items);
//     auto [paid, mailed] = co_await dispatch::all(payments::remote::charge.call(order.card, order.total),
//                                                  mail::remote::confirm.call(order.customer));
//     co_await dispatch::sleep(std::chrono::hours(24));
//     co_return Receipt{r.id, paid.id};
//   }
//
// It runs through a scheduler (dispatchd): each co_await of a durable call
// ends the run with a Poll, the scheduler makes the calls and resumes the
// workflow with their results, and the workflow replays its journal (its
// input and every result so far) from the start, answering journaled calls
// at once. Hence the rules (docs/workflows.md): the code between awaits must
// be deterministic, and what it waits for goes through co_await.
//
// What a workflow may co_await (anything else does not compile):
// - stub.call(args...): a durable call of any annotated function at any
//   endpoint (dispatch/durable/durable_call.h); its C++ result, or its
//   dispatch::Error thrown with its code (catch it to compensate).
// - dispatch::sleep(duration), dispatch::sleep_until(time): durable timers.
// - dispatch::all / any / race over calls and sleeps, of any number and
//   types (below).
// - another Workflow<U> called directly: a helper run inline, in the same
//   journal (a workflow's stub.call() instead runs it as a child workflow,
//   a call of its own).
// - dispatch::continue_as(stub.call(args...)): a tail call; never resumes.
//
// The workflow sees its dispatch ID, the root of its tree and its attempt
// in dispatch::this_call().
//
// Not for: C++17 (the header needs <coroutine>), or calls outside a
// workflow (the stubs' direct forms and dispatch() do those).
// Public header: C++20 only.
#pragma once

#if __cplusplus < 202002L || !__has_include(<coroutine>)
#error "dispatch/workflow/workflow.h needs C++20 (coroutines): compile the target that declares workflows with -std=c++20"
#endif

#include <array>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "dispatch/core/error.h"
#include "dispatch/core/result.h"
#include "dispatch/durable/durable_call.h"

namespace dispatch {

template <typename T>
class Workflow;

namespace workflow {

// One Run of a workflow: its journal, the calls it makes, what it waits
// for. Owned by the runtime (dispatch/workflow/serve.h runs it).
class Run;

namespace detail {

// What a suspended workflow waits for: the runtime resumes it once ready().
class Waiter {
 public:
  // The results needed before ready() can become true (the Poll's
  // min_results): at least 1.
  virtual std::size_t needed(Run& run) const = 0;
  virtual bool ready(Run& run) const = 0;

 protected:
  ~Waiter() = default;
};

// A step's end, as the journal holds it.
struct Ended {
  uint64_t order = 0;  // 1-based order of arrival among the run's steps
  bool failed = false;
  std::string_view output;  // the response message (a call that succeeded)
  // The error a workflow sees: the callee's code (its Error.type, or its
  // status) and message.
  Error error() const;
  int status = 0;
  std::string_view error_type;
  std::string_view error_message;
};

// Issues the run's next step, or on replay checks it against the journal
// (a different step there stops the run: stopped() is then true). Returns
// its sequence number.
uint32_t step_call(Run& run, const char* function, const char* request_type, const std::string& request,
                   const std::string& endpoint, std::optional<std::chrono::milliseconds> expiration);
uint32_t step_sleep(Run& run, std::optional<int64_t> duration_ms, std::optional<int64_t> until_unix_ms);
// The step's end, or null while it runs.
const Ended* ended(Run& run, uint32_t seq);
// True once the run must not go on (a determinism violation, a tail call):
// every await then suspends for good.
bool stopped(Run& run);
// Registers the suspension of `coroutine` on `waiter`.
void wait(Run& run, std::coroutine_handle<> coroutine, const Waiter& waiter);
// Ends the run with a tail call (continue_as).
void tail_call(Run& run, const char* function, const char* request_type, const std::string& request,
               const std::string& endpoint, std::optional<std::chrono::milliseconds> expiration);

// What a step yields: a call's result (void as std::monostate), nothing for
// a sleep.
template <typename R>
using Value = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

}  // namespace detail

// A durable timer (dispatch::sleep / sleep_until). Like every awaitable
// below, it does nothing until co_awaited: dropping one is a warning.
struct [[nodiscard("nothing happens until a workflow co_awaits it")]] Sleep {
  std::optional<int64_t> duration_ms;
  std::optional<int64_t> until_unix_ms;
};

template <typename Op>
struct OpTraits;
template <typename R>
struct OpTraits<DurableCall<R>> {
  using value = detail::Value<R>;
  static uint32_t issue(Run& run, const DurableCall<R>& call) {
    return detail::step_call(run, call.function(), call.request_type(), call.request().value(), call.endpoint(),
                             call.expiration());
  }
  static const Error* local_error(const DurableCall<R>& call) {
    return call.request().ok() ? nullptr : &call.request().error();
  }
  static value take(const DurableCall<R>& call, const detail::Ended& e) {
    if (e.failed) throw e.error();
    auto decoded = call.decode()(e.output);
    if constexpr (std::is_void_v<R>) {
      decoded.value();
      return {};
    } else {
      return std::move(decoded).value();
    }
  }
};
template <>
struct OpTraits<Sleep> {
  using value = std::monostate;
  static uint32_t issue(Run& run, const Sleep& s) { return detail::step_sleep(run, s.duration_ms, s.until_unix_ms); }
  static const Error* local_error(const Sleep&) { return nullptr; }
  static value take(const Sleep&, const detail::Ended& e) {
    if (e.failed) throw e.error();
    return {};
  }
};

// What all / any / race wait for.
enum class Gather { all, any, race };

template <Gather kind, typename... Ops>
struct [[nodiscard("nothing happens until a workflow co_awaits it")]] GatherOf {
  std::tuple<Ops...> ops;
};
template <Gather kind, typename Op>
struct [[nodiscard("nothing happens until a workflow co_awaits it")]] GatherVector {
  std::vector<Op> ops;
};

// A tail call (continue_as).
template <typename R>
struct [[nodiscard("nothing happens until a workflow co_awaits it")]] ContinueAs {
  DurableCall<R> call;
};

namespace detail {

class PromiseBase;

// Awaits a fixed set of steps (a lone call or sleep is a gather of one).
template <Gather kind, typename... Ops>
class GatherAwaiter final : public Waiter {
 public:
  static constexpr std::size_t kCount = sizeof...(Ops);

  GatherAwaiter(Run* run, std::tuple<Ops...> ops) : run_(run), ops_(std::move(ops)) {}

  bool await_ready() {
    // A request that did not encode fails the await at once, before any
    // step is issued (the same on every replay).
    local_error_ = first_local_error(std::index_sequence_for<Ops...>{});
    if (local_error_ != nullptr) return true;
    issue(std::index_sequence_for<Ops...>{});
    return !stopped(*run_) && ready(*run_);
  }
  void await_suspend(std::coroutine_handle<> h) { wait(*run_, h, *this); }
  auto await_resume() {
    if (local_error_ != nullptr) throw *local_error_;
    return resume(std::index_sequence_for<Ops...>{});
  }

  std::size_t needed(Run& run) const override {
    if constexpr (kind != Gather::all) {
      return 1;
    } else {
      std::size_t pending = 0;
      for (uint32_t seq : seqs_) pending += ended(run, seq) == nullptr ? 1 : 0;
      return pending == 0 ? 1 : pending;
    }
  }
  bool ready(Run& run) const override {
    std::size_t done = 0, succeeded = 0;
    for (uint32_t seq : seqs_) {
      if (const Ended* e = ended(run, seq)) {
        ++done;
        succeeded += e->failed ? 0 : 1;
      }
    }
    switch (kind) {
      case Gather::all: return done == kCount;
      case Gather::race: return done > 0;
      case Gather::any: return succeeded > 0 || done == kCount;
    }
    return false;
  }

 private:
  template <std::size_t... I>
  const Error* first_local_error(std::index_sequence<I...>) const {
    const Error* found = nullptr;
    ((found = found ? found : OpTraits<Ops>::local_error(std::get<I>(ops_))), ...);
    return found;
  }
  template <std::size_t... I>
  void issue(std::index_sequence<I...>) {
    ((seqs_[I] = OpTraits<Ops>::issue(*run_, std::get<I>(ops_))), ...);
  }

  // The index of the step that decides a race or an any (first to end, or
  // first to succeed, in the order they ended), or of the first failure in
  // that order; kCount for none.
  std::size_t first(bool successes_only) const {
    std::size_t best = kCount;
    uint64_t best_order = 0;
    for (std::size_t i = 0; i < kCount; ++i) {
      const Ended* e = ended(*run_, seqs_[i]);
      if (e == nullptr || (successes_only && e->failed)) continue;
      if (best == kCount || e->order < best_order) {
        best = i;
        best_order = e->order;
      }
    }
    return best;
  }
  std::size_t first_failure() const {
    std::size_t best = kCount;
    uint64_t best_order = 0;
    for (std::size_t i = 0; i < kCount; ++i) {
      const Ended* e = ended(*run_, seqs_[i]);
      if (e == nullptr || !e->failed) continue;
      if (best == kCount || e->order < best_order) {
        best = i;
        best_order = e->order;
      }
    }
    return best;
  }

  template <std::size_t... I>
  auto resume(std::index_sequence<I...>) {
    if constexpr (kind == Gather::all) {
      // Every step ended; the first failure (in the order they ended) is
      // the gather's error.
      if (std::size_t f = first_failure(); f != kCount) throw ended(*run_, seqs_[f])->error();
      if constexpr (kCount == 1) {
        return OpTraits<std::tuple_element_t<0, std::tuple<Ops...>>>::take(std::get<0>(ops_),
                                                                          *ended(*run_, seqs_[0]));
      } else {
        return std::tuple<typename OpTraits<Ops>::value...>(
            OpTraits<Ops>::take(std::get<I>(ops_), *ended(*run_, seqs_[I]))...);
      }
    } else {
      std::size_t winner = first(kind == Gather::any);
      if (winner == kCount) {
        // any: every step failed; the first failure is the error.
        throw ended(*run_, seqs_[first_failure()])->error();
      }
      using Result = std::variant<typename OpTraits<Ops>::value...>;
      std::optional<Result> out;
      ((I == winner ? (void)out.emplace(std::in_place_index<I>,
                                        OpTraits<Ops>::take(std::get<I>(ops_), *ended(*run_, seqs_[I])))
                    : (void)0),
       ...);
      return std::move(*out);
    }
  }

  Run* run_;
  std::tuple<Ops...> ops_;
  std::array<uint32_t, kCount> seqs_{};
  const Error* local_error_ = nullptr;
};

// Awaits any number of steps of one type.
template <Gather kind, typename Op>
class VectorAwaiter final : public Waiter {
 public:
  using Value = typename OpTraits<Op>::value;

  VectorAwaiter(Run* run, std::vector<Op> ops) : run_(run), ops_(std::move(ops)) {}

  bool await_ready() {
    if (ops_.empty()) {
      if (kind != Gather::all) empty_ = true;
      return true;
    }
    for (const Op& op : ops_) {
      if (const Error* e = OpTraits<Op>::local_error(op)) {
        local_error_ = e;
        return true;
      }
    }
    seqs_.reserve(ops_.size());
    for (const Op& op : ops_) seqs_.push_back(OpTraits<Op>::issue(*run_, op));
    return !stopped(*run_) && ready(*run_);
  }
  void await_suspend(std::coroutine_handle<> h) { wait(*run_, h, *this); }
  auto await_resume() {
    if (local_error_ != nullptr) throw *local_error_;
    if (empty_) throw Error(Code::invalid_argument, "dispatch::any / race over no calls: nothing can win");
    if constexpr (kind == Gather::all) {
      if (std::size_t f = pick(false, true); f != ops_.size()) throw ended(*run_, seqs_[f])->error();
      std::vector<Value> values;
      values.reserve(ops_.size());
      for (std::size_t i = 0; i < ops_.size(); ++i) values.push_back(OpTraits<Op>::take(ops_[i], *ended(*run_, seqs_[i])));
      return values;
    } else {
      std::size_t winner = pick(kind == Gather::any, false);
      if (winner == ops_.size()) throw ended(*run_, seqs_[pick(false, true)])->error();
      return std::pair<std::size_t, Value>(winner, OpTraits<Op>::take(ops_[winner], *ended(*run_, seqs_[winner])));
    }
  }

  std::size_t needed(Run& run) const override {
    if constexpr (kind != Gather::all) {
      return 1;
    } else {
      std::size_t pending = 0;
      for (uint32_t seq : seqs_) pending += ended(run, seq) == nullptr ? 1 : 0;
      return pending == 0 ? 1 : pending;
    }
  }
  bool ready(Run& run) const override {
    std::size_t done = 0, succeeded = 0;
    for (uint32_t seq : seqs_) {
      if (const Ended* e = ended(run, seq)) {
        ++done;
        succeeded += e->failed ? 0 : 1;
      }
    }
    switch (kind) {
      case Gather::all: return done == seqs_.size();
      case Gather::race: return done > 0;
      case Gather::any: return succeeded > 0 || done == seqs_.size();
    }
    return false;
  }

 private:
  // The first step (in the order they ended) that ended, succeeded
  // (`successes_only`) or failed (`failures_only`); size() for none.
  std::size_t pick(bool successes_only, bool failures_only) const {
    std::size_t best = ops_.size();
    uint64_t best_order = 0;
    for (std::size_t i = 0; i < seqs_.size(); ++i) {
      const Ended* e = ended(*run_, seqs_[i]);
      if (e == nullptr || (successes_only && e->failed) || (failures_only && !e->failed)) continue;
      if (best == ops_.size() || e->order < best_order) {
        best = i;
        best_order = e->order;
      }
    }
    return best;
  }

  Run* run_;
  std::vector<Op> ops_;
  std::vector<uint32_t> seqs_;
  const Error* local_error_ = nullptr;
  bool empty_ = false;
};

// Ends the run with a tail call; never resumes.
template <typename R>
class ContinueAwaiter {
 public:
  ContinueAwaiter(Run* run, DurableCall<R> call) : run_(run), call_(std::move(call)) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<>) {
    if (!call_.request().ok()) return false;  // resumes, and throws the encoding error
    tail_call(*run_, call_.function(), call_.request_type(), call_.request().value(), call_.endpoint(),
              call_.expiration());
    return true;
  }
  void await_resume() { throw call_.request().error(); }

 private:
  Run* run_;
  DurableCall<R> call_;
};

// Runs another workflow inline: the helper shares this run's journal.
template <typename U>
class InlineAwaiter;

// What every Workflow<T>'s promise shares: the run it belongs to, the
// coroutine awaiting it (an inline helper's caller), and what may be
// awaited.
class PromiseBase {
 public:
  Run* run = nullptr;
  std::coroutine_handle<> continuation;
  std::exception_ptr exception;

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      std::coroutine_handle<> next = h.promise().continuation;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }

  template <typename R>
  GatherAwaiter<Gather::all, DurableCall<R>> await_transform(DurableCall<R> call) {
    return {run, std::tuple<DurableCall<R>>(std::move(call))};
  }
  GatherAwaiter<Gather::all, Sleep> await_transform(Sleep s) { return {run, std::tuple<Sleep>(s)}; }
  template <Gather kind, typename... Ops>
  GatherAwaiter<kind, Ops...> await_transform(GatherOf<kind, Ops...> g) {
    return {run, std::move(g.ops)};
  }
  template <Gather kind, typename Op>
  VectorAwaiter<kind, Op> await_transform(GatherVector<kind, Op> g) {
    return {run, std::move(g.ops)};
  }
  template <typename R>
  ContinueAwaiter<R> await_transform(ContinueAs<R> c) {
    return {run, std::move(c.call)};
  }
  template <typename U>
  InlineAwaiter<U> await_transform(Workflow<U>&& helper);

  // Anything else would run outside the journal: on replay it would run
  // again, or wait for something that is not there.
  template <typename A>
  A&& await_transform(A&& a) {
    static_assert(sizeof(A) == 0,
                  "a dispatch::Workflow can co_await durable calls (stub.call(...)), dispatch::sleep / "
                  "sleep_until, dispatch::all / any / race of those, dispatch::continue_as, and other "
                  "Workflows; other awaitables are not durable");
    return std::forward<A>(a);
  }
};

}  // namespace detail
}  // namespace workflow

// The coroutine type of a workflow returning T (void allowed). Move-only;
// owns its coroutine frame.
template <typename T>
class [[nodiscard]] Workflow {
 public:
  struct promise_type : workflow::detail::PromiseBase {
    std::optional<T> value;
    Workflow get_return_object() { return Workflow(std::coroutine_handle<promise_type>::from_promise(*this)); }
    template <typename V = T>
    void return_value(V&& v) {
      value.emplace(std::forward<V>(v));
    }
  };

  Workflow(Workflow&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Workflow& operator=(Workflow&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  ~Workflow() { reset(); }

  // For the runtime (dispatch/workflow/serve.h).
  std::coroutine_handle<promise_type> handle() const noexcept { return handle_; }
  // The finished coroutine's result; rethrows what it threw.
  T take() {
    auto& p = handle_.promise();
    if (p.exception) std::rethrow_exception(p.exception);
    return std::move(*p.value);
  }

 private:
  explicit Workflow(std::coroutine_handle<promise_type> h) : handle_(h) {}
  void reset() {
    if (handle_) handle_.destroy();
    handle_ = {};
  }
  std::coroutine_handle<promise_type> handle_;
};

template <>
class [[nodiscard]] Workflow<void> {
 public:
  struct promise_type : workflow::detail::PromiseBase {
    Workflow get_return_object() { return Workflow(std::coroutine_handle<promise_type>::from_promise(*this)); }
    void return_void() noexcept {}
  };

  Workflow(Workflow&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Workflow& operator=(Workflow&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  ~Workflow() { reset(); }

  std::coroutine_handle<promise_type> handle() const noexcept { return handle_; }
  void take() {
    auto& p = handle_.promise();
    if (p.exception) std::rethrow_exception(p.exception);
  }

 private:
  explicit Workflow(std::coroutine_handle<promise_type> h) : handle_(h) {}
  void reset() {
    if (handle_) handle_.destroy();
    handle_ = {};
  }
  std::coroutine_handle<promise_type> handle_;
};

namespace workflow::detail {

template <typename U>
class InlineAwaiter {
 public:
  InlineAwaiter(Run* run, Workflow<U> helper) : run_(run), helper_(std::move(helper)) {}
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
    auto& p = helper_.handle().promise();
    p.run = run_;
    p.continuation = caller;
    return helper_.handle();  // runs the helper now; it resumes `caller` when it ends
  }
  U await_resume() { return helper_.take(); }

 private:
  Run* run_;
  Workflow<U> helper_;
};

template <typename U>
InlineAwaiter<U> PromiseBase::await_transform(Workflow<U>&& helper) {
  return {run, std::move(helper)};
}

template <typename Op>
struct IsOp : std::false_type {};
template <typename R>
struct IsOp<DurableCall<R>> : std::true_type {};
template <>
struct IsOp<Sleep> : std::true_type {};

}  // namespace workflow::detail

// A durable sleep: the scheduler resumes the workflow once `duration` has
// passed (counted from when it took the workflow's Poll), whatever
// restarts in between. Nothing runs meanwhile.
template <typename Rep, typename Period>
workflow::Sleep sleep(std::chrono::duration<Rep, Period> duration) {
  return {std::chrono::duration_cast<std::chrono::milliseconds>(duration).count(), std::nullopt};
}
// The same until a wall-clock time (at once when it has passed).
template <typename Duration>
workflow::Sleep sleep_until(std::chrono::time_point<std::chrono::system_clock, Duration> when) {
  return {std::nullopt, std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count()};
}

// Waits for every one of the calls (and sleeps), made at once: a tuple of
// their results in order (a void call's is std::monostate). If some
// failed, throws the error of the first that failed, in the order they
// ended, once all have ended.
template <typename... Ops>
auto all(Ops... ops) {
  static_assert((workflow::detail::IsOp<Ops>::value && ...),
                "dispatch::all takes durable calls (stub.call(...)) and dispatch::sleep");
  return workflow::GatherOf<workflow::Gather::all, Ops...>{std::tuple<Ops...>(std::move(ops)...)};
}
// The first call to succeed, as a std::variant indexed by position; if
// every one fails, the error of the first that failed. The others keep
// running; their results are ignored.
template <typename... Ops>
auto any(Ops... ops) {
  static_assert((workflow::detail::IsOp<Ops>::value && ...),
                "dispatch::any takes durable calls (stub.call(...)) and dispatch::sleep");
  return workflow::GatherOf<workflow::Gather::any, Ops...>{std::tuple<Ops...>(std::move(ops)...)};
}
// The first call to end, success or failure (a failure is thrown), as a
// std::variant indexed by position: race(call, dispatch::sleep(5s)) is a
// timeout.
template <typename... Ops>
auto race(Ops... ops) {
  static_assert((workflow::detail::IsOp<Ops>::value && ...),
                "dispatch::race takes durable calls (stub.call(...)) and dispatch::sleep");
  return workflow::GatherOf<workflow::Gather::race, Ops...>{std::tuple<Ops...>(std::move(ops)...)};
}
// Any number of calls of one type: all() gives a std::vector of their
// results; any() and race() a std::pair of the winner's index and result.
template <typename Op>
auto all(std::vector<Op> ops) {
  return workflow::GatherVector<workflow::Gather::all, Op>{std::move(ops)};
}
template <typename Op>
auto any(std::vector<Op> ops) {
  return workflow::GatherVector<workflow::Gather::any, Op>{std::move(ops)};
}
template <typename Op>
auto race(std::vector<Op> ops) {
  return workflow::GatherVector<workflow::Gather::race, Op>{std::move(ops)};
}

// A tail call: `co_await dispatch::continue_as(remote::loop.call(next));`
// ends this run and makes the scheduler start that call in its place, with
// the same dispatch ID (and a fresh journal): a workflow that loops for ever
// without its journal growing. Never resumes (unless the call's request
// could not be encoded: that error is thrown).
template <typename R>
workflow::ContinueAs<R> continue_as(DurableCall<R> call) {
  return {std::move(call)};
}

}  // namespace dispatch
