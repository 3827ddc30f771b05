// Test-only: a process a test starts ends with the test.
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

// Call in the child, between fork() and exec, with the test's pid taken
// before fork(): the child gets SIGKILL when the test ends, and ends at
// once if the test ended before this call.
inline void end_with_test(pid_t test) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != test) ::_exit(126);
}

}  // namespace dispatch::testing
