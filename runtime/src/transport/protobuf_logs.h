// libprotobuf's own log lines in the process's log: protobuf writes some
// lines to stderr itself, in its own shape ("[libprotobuf ERROR
// .../wire_format_lite.cc:618] String field 'x' contains invalid UTF-8
// data when parsing a protocol buffer..."), one per message a peer sends
// with a bad string. In a server logging JSON (DISPATCH_LOG_FORMAT=json)
// such a line breaks the one-object-per-line contract, and any client can
// write as many as it sends requests. Routed here, each is a line of the
// given Logger: "protobuf: <protobuf's text>", at warn (protobuf's INFO at
// info, FATAL at error, after which protobuf aborts as always), and the
// same text at most once per kRepeatEvery.
//
// Not for: the lines the runtime logs itself, or silencing protobuf where
// the caller reports the problem already (pb::LogSilencer there).
#pragma once

#include <chrono>

#include "dispatch/core/logger.h"

namespace dispatch::transport {

// Replaces the process's protobuf log handler (google::protobuf::
// SetLogHandler) with one writing to `logger`; thread-safe. The last call
// wins, as for SetLogHandler itself: an application that sets its own
// handler afterwards keeps it.
void route_protobuf_logs(Logger logger);

// route_protobuf_logs(Logger::from_env()) the first time it is called in
// the process, nothing after; every dispatch::Server calls it.
void route_protobuf_logs_once();

inline constexpr std::chrono::seconds kRepeatEvery{10};

}  // namespace dispatch::transport
