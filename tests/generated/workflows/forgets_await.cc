// Compiled by generated_workflows_forgotten_await_warns, which expects a
// warning for each awaitable a workflow makes and drops without co_await:
// each would silently do nothing.
#include <chrono>

#include "workflows/api.dispatch.h"

namespace flows {

dispatch::Workflow<void> forgets(std::string_view note) {
  remote::audit.call(note);
  remote::audit.call(note).expire_after(std::chrono::seconds(5));
  dispatch::sleep(std::chrono::seconds(1));
  dispatch::all(remote::audit.call(note), remote::audit.call(note));
  co_return;
}

}  // namespace flows
