// Names the calling thread as top -H, perf and gdb show it, so an operator
// can tell the runtime's threads apart (dispatch-io-0, store-writer, ...).
// Internal to the runtime; not for user threads.
#pragma once

#include <pthread.h>

#include <string>

namespace dispatch::detail {

// Linux keeps 15 characters of a thread's name; longer names are cut.
inline void name_this_thread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace dispatch::detail
