// libFuzzer target: the workflow runtime's Run entry (dispatch/workflow/
// serve.h) on what a scheduler hands it. The first byte chooses the input:
//   even: the rest is a journal (dispatch.workflow.v1.Journal) resumed as
//         this workflow's own (its function, version and input type are set
//         so that replay, not the identity check, is what gets fuzzed),
//         with a result for every step it says is in flight, failing every
//         third one;
//   odd:  the rest is a whole RunRequest, as it comes off the wire.
// Nothing may crash or throw out of run(); an answer must be a RunResponse
// that parses, and a Poll must carry at most 1000 calls and a min_results
// it could reach.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/service.h"
#include "dispatch/durable/function_service.h"
#include "dispatch/sdk/v1/sdk.pb.h"
#include "dispatch/workflow/serve.h"
#include "dispatch/workflow/v1/journal.pb.h"
#include "dispatch/workflow/workflow.h"

namespace {

using dispatch::DurableCall;
using dispatch::Error;
using dispatch::Result;
using dispatch::Workflow;

// A decimal number, or invalid_argument: journals carry any bytes.
Result<int> decode_int(std::string_view bytes) {
  if (bytes.empty() || bytes.size() > 6 || bytes.find_first_not_of("0123456789") != std::string_view::npos) {
    return Error(dispatch::Code::invalid_argument, "not a small number");
  }
  return std::stoi(std::string(bytes));
}

DurableCall<int> twice(int x) { return {"f.twice", "f.TwiceRequest", std::to_string(x), &decode_int}; }

// Every kind of await: a call, all() with a sleep, race(), all() over a
// vector, a caught failure, any().
Workflow<int> every_await(int x) {
  int total = co_await twice(x);
  auto [b, slept] = co_await dispatch::all(twice(total), dispatch::sleep(std::chrono::seconds(1)));
  (void)slept;
  total += b;
  auto first = co_await dispatch::race(twice(b), dispatch::sleep(std::chrono::seconds(5)));
  total += first.index() == 0 ? std::get<0>(first) : 0;
  std::vector<DurableCall<int>> fan;
  for (int i = 0; i < 3; ++i) fan.push_back(twice(i));
  for (int v : co_await dispatch::all(std::move(fan))) total += v;
  try {
    total += co_await twice(-1);
  } catch (const Error&) {
    total += 1;
  }
  auto some = co_await dispatch::any(twice(7), twice(8));
  total += some.index() == 0 ? std::get<0>(some) : std::get<1>(some);
  co_return total;
}

struct Request {
  int x = 0;
};

Result<std::unique_ptr<dispatch::workflow::Instance>> start(std::string_view input) {
  auto x = decode_int(input);
  if (!x.ok()) return std::move(x).error();
  auto instance = std::make_unique<dispatch::workflow::InstanceOf<Request, int>>();
  instance->request.x = *x;
  instance->start(every_await(instance->request.x), [](int&& v) { return std::to_string(v); });
  return std::unique_ptr<dispatch::workflow::Instance>(std::move(instance));
}

const dispatch::workflow::Definition kDefinition{"f.every_await", "v1", "f.EveryAwaitRequest",
                                                 "f.EveryAwaitResponse", &start};

std::string request_from_journal(std::string_view bytes) {
  dispatch::workflow::v1::Journal journal;
  if (!journal.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return {};
  journal.set_function(kDefinition.function);
  journal.set_version(kDefinition.version);
  journal.set_input_type(kDefinition.request_type);
  if (journal.run() == 0) journal.set_run(1);
  if (journal.input().empty()) journal.set_input("3");
  dispatch::sdk::v1::RunRequest req;
  auto* poll = req.mutable_poll_result();
  int n = 0;
  for (int i = 0; i < journal.steps_size(); ++i) {
    const auto& step = journal.steps(i);
    if (step.order() != 0 || step.sent_in() == 0) continue;
    auto* r = poll->add_results();
    r->set_correlation_id((uint64_t{journal.run()} << 32) | static_cast<uint32_t>(i + 1));
    if (++n % 3 == 0) {
      r->mutable_error()->set_type("not_found");
      r->mutable_error()->set_message("fuzz");
    } else {
      r->mutable_output()->set_value(std::to_string(i));
    }
  }
  poll->set_coroutine_state(journal.SerializeAsString());
  return req.SerializeAsString();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string request = data[0] % 2 == 0 ? request_from_journal(rest) : std::string(rest);
  if (request.empty() && data[0] % 2 == 0) return 0;

  dispatch::CallContext context;
  dispatch::DispatchTable table;
  const dispatch::Service& service = dispatch::function_service();
  const dispatch::MethodCall call{request, context, table, service};
  Result<std::string> answer = [&]() -> Result<std::string> {
    try {
      return dispatch::workflow::run(call, kDefinition);
    } catch (const Error& e) {
      return e;  // what the workflow threw: the Run route makes it a status
    }
  }();
  if (!answer.ok()) return 0;
  dispatch::sdk::v1::RunResponse res;
  if (!res.ParseFromString(*answer)) std::abort();
  if (res.has_poll()) {
    const auto& poll = res.poll();
    if (poll.calls_size() > 1000 || poll.min_results() < 1 || poll.min_results() > poll.max_results()) std::abort();
  }
  return 0;
}
