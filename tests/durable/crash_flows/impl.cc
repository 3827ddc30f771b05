// The functions and workflows of crash_flows/api.h.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "crash_flows/api.dispatch.h"
#include "dispatch/core/error.h"
#include "dispatch/core/service.h"

namespace crash {

std::int64_t square(std::int64_t x) {
  const char* path = std::getenv("CRASH_CHILD_LOG");
  if (path == nullptr || *path == '\0') {
    throw dispatch::Error(dispatch::Code::failed_precondition, "CRASH_CHILD_LOG names no file to log to");
  }
  const int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) throw dispatch::Error(dispatch::Code::unavailable, std::string("cannot open ") + path);
  const std::string line = dispatch::this_call().dispatch_id + " " + std::to_string(x) + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!written) throw dispatch::Error(dispatch::Code::unavailable, std::string("cannot append to ") + path);
  return x * x;
}

dispatch::Workflow<std::int64_t> nested(std::int64_t x) {
  const std::int64_t s = co_await remote::square.call(x);
  co_return s + 1;
}

dispatch::Workflow<std::int64_t> tree(std::int64_t n, std::chrono::milliseconds pause) {
  std::vector<dispatch::DurableCall<std::int64_t>> squares;
  for (std::int64_t i = 0; i < 10; ++i) squares.push_back(remote::square.call(10 * n + i));
  const std::vector<std::int64_t> each = co_await dispatch::all(std::move(squares));
  co_await dispatch::sleep(pause);
  std::int64_t sum = co_await remote::nested.call(100000 + n);
  for (std::int64_t s : each) sum += s;
  co_return sum;
}

}  // namespace crash
