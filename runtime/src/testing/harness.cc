// The harness's endpoint and its run loop. The endpoint is a Client that
// the scheduler's client factory hands out for every URL: it answers a
// faked function itself (an Exit built from what the fake returned) and
// runs everything else into the table through the Dispatch protocol's Run
// route, as a server would. The loop runs delivery rounds on the test's
// thread and, when a round starts nothing, moves the clock to the next
// call that is due.
#include "dispatch/testing/harness.h"

#include <algorithm>
#include <mutex>

#include "dispatch/core/in_process.h"
#include "dispatch/durable/function_service.h"
#include "dispatch/memory/memory_store.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "durable/protocol.h"

namespace dispatch::testing {

namespace sdk = ::dispatch::sdk::v1;

// Calls go nowhere near this URL: the endpoint serves every URL.
constexpr const char* kEndpoint = "http://harness.invalid";

class Harness::Endpoint final : public Client {
 public:
  explicit Endpoint(const DispatchTable& table) : table_(table) {}

  void call_async(std::string_view path, std::string request, const CallOptions& options,
                  Callback done) override {
    done(call(path, std::move(request), options));
  }

  Result<std::string> call(std::string_view path, std::string request, const CallOptions& options) override {
    sdk::RunRequest req;
    if (path == kRunPath && req.ParseFromString(request)) {
      Fake fake;
      {
        std::lock_guard<std::mutex> lock(mu_);
        delivered_[req.function()]++;
        auto it = fakes_.find(req.function());
        if (it != fakes_.end()) fake = it->second;
      }
      if (fake) return answer(req, fake);
    }
    return table_.call(path, std::move(request), options);
  }

  void add(std::string function, Fake fake) {
    std::lock_guard<std::mutex> lock(mu_);
    fakes_[std::move(function)] = std::move(fake);
  }
  std::size_t delivered(std::string_view function) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = delivered_.find(std::string(function));
    return it == delivered_.end() ? 0 : it->second;
  }

 private:
  // The fake's answer as the function's Run would give it: Exit with its
  // response, or with its error and the status the error's code maps to.
  static Result<std::string> answer(const sdk::RunRequest& req, const Fake& fake) {
    sdk::RunResponse res;
    if (!req.has_input()) {
      res.set_status(sdk::STATUS_INVALID_ARGUMENT);
      res.mutable_exit()->mutable_result()->mutable_error()->set_type("invalid_argument");
      res.mutable_exit()->mutable_result()->mutable_error()->set_message(
          "a fake of " + req.function() + " was resumed with a PollResult; fakes answer with Exit only");
      return res.SerializeAsString();
    }
    Result<std::string> out = fake(req.input().value());
    if (out.ok()) {
      res.set_status(sdk::STATUS_OK);
      protocol::pack_any(req.function() + ".FakeResponse", std::move(out).value(),
                         res.mutable_exit()->mutable_result()->mutable_output());
    } else {
      res.set_status(static_cast<sdk::Status>(run_status_for(out.error().code())));
      res.mutable_exit()->mutable_result()->mutable_error()->set_type(std::string(code_name(out.error().code())));
      res.mutable_exit()->mutable_result()->mutable_error()->set_message(out.error().message());
    }
    return res.SerializeAsString();
  }

  InProcessClient table_;
  mutable std::mutex mu_;
  std::map<std::string, Fake, std::less<>> fakes_;
  std::map<std::string, std::size_t, std::less<>> delivered_;
};

Harness::Harness(const DispatchTable& table, HarnessOptions options)
    : clock_(options.start_ms), options_(std::move(options)), endpoint_(std::make_shared<Endpoint>(table)) {
  scheduler::SchedulerOptions o;
  o.store = scheduler::open_memory_store();
  o.clock = &clock_;
  o.seed = 1;
  o.default_policy = options_.policy;
  o.logger = Logger(LogLevel::off);
  std::shared_ptr<Endpoint> endpoint = endpoint_;
  o.client_factory = [endpoint](const std::string&) -> Result<std::shared_ptr<Client>> {
    return std::shared_ptr<Client>(endpoint);
  };
  // The in-memory store cannot fail to open: a failure here is a bug.
  scheduler_ = scheduler::Scheduler::open(std::move(o)).value();
}

Harness::~Harness() = default;

void Harness::fake(std::string function, Fake fake) { endpoint_->add(std::move(function), std::move(fake)); }

std::size_t Harness::deliveries(std::string_view function) const { return endpoint_->delivered(function); }

Result<scheduler::CallRecord> Harness::run_to_end(std::string function, std::string request_type,
                                                  std::string request) {
  scheduler::NewCall c;
  c.function = std::move(function);
  c.endpoint = kEndpoint;
  c.input_type_url = "type.googleapis.com/" + request_type;
  c.input = std::move(request);
  std::vector<scheduler::NewCall> calls;
  calls.push_back(std::move(c));
  auto ids = scheduler_->dispatch(std::move(calls));
  if (!ids.ok()) return std::move(ids).error();
  last_id_ = ids->at(0);
  const int64_t give_up_at = clock_.now_ms() + options_.horizon.count();
  // Rounds that start nothing while something is due (an outcome being
  // recorded) are few; this bounds a loop that would never end.
  for (int idle = 0; idle < 1000;) {
    auto started = scheduler_->step();
    if (!started.ok()) return std::move(started).error();
    scheduler_->wait_idle();
    auto now = scheduler_->get(last_id_);
    if (!now.ok()) return std::move(now).error();
    if (scheduler::is_final(now->state)) return now;
    if (*started > 0) {
      idle = 0;
      continue;
    }
    auto due = scheduler_->store().next_due_ms();
    if (!due.ok()) return std::move(due).error();
    if (!due->has_value()) {
      return Error(Code::failed_precondition, "call " + last_id_ + " (" + now->function + ") is " +
                                                  std::string(scheduler::state_name(now->state)) +
                                                  " and nothing is due that could end it");
    }
    if (**due > give_up_at) {
      return Error(Code::deadline_exceeded, "call " + last_id_ + " (" + now->function + ") did not end within " +
                                                std::to_string(options_.horizon.count()) + " ms of the clock");
    }
    if (**due > clock_.now_ms()) {
      clock_.set(**due);
      idle = 0;
    } else {
      ++idle;
    }
  }
  return Error(Code::internal, "call " + last_id_ + ": delivery rounds stopped starting calls");
}

std::vector<scheduler::CallRecord> Harness::children(std::string_view id) {
  auto kids = scheduler_->children(id, 100000, "");
  return kids.ok() ? std::move(kids).value() : std::vector<scheduler::CallRecord>{};
}

Result<scheduler::CallRecord> Harness::get(std::string_view id) { return scheduler_->get(id); }

Error Harness::error_of(const scheduler::CallRecord& ended) {
  if (ended.state == scheduler::CallState::cancelled) return Error(Code::canceled, "the call was cancelled");
  const std::optional<Code> code = code_from_name(ended.error_type);
  return Error(code.value_or(Code::unknown),
               (code ? "" : ended.error_type + ": ") + ended.error_message);
}

}  // namespace dispatch::testing
