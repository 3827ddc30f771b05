// Test- and benchmark-only: a process a test (or a benchmark's driver)
// starts ends with it.
//
// A test that crashes, times out (ctest kills it) or fails an ASSERT in a
// way that skips its teardown would otherwise leave its children running:
// nats-servers, dispatchd, endpoints, still bound to their ports and
// writing to their directories while the next tests run.
//
// Not for: production code. The kernel's signal goes when the *thread*
// that forked ends, so fork from the test's own thread (as every test
// here does), never from a thread that ends before the child should.
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace dispatch::testing {

// fork(), and in the child (before the caller's exec): SIGKILL when this
// process ends, and an exit at once if it ended before that was set up.
// Only async-signal-safe calls in the child, so a caller with threads may
// use it.
inline pid_t fork_ending_with_parent() {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
  }
  return pid;
}

}  // namespace dispatch::testing
