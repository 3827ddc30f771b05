// One HTTP/1.1 connection of dispatch::Server: keep-alive requests read,
// answered (inline on the I/O thread or on a worker) and written, under the
// server's limits and timeouts. A connection that opens with the HTTP/2
// preface is handed to an Http2Connection (gRPC) on the same strand.
//
// Not for: accepting, lanes, the watchdog or drain (http_server.cc,
// server_core.h); what a request is answered with (request_handler.h).
#pragma once

#include <memory>

#include "transport/server_core.h"

namespace dispatch::transport {

// A session for an accepted socket on `lane` (its executor is a strand of
// the lane's io_context). Call start() or reject_over_limit() on it next.
std::shared_ptr<Connection> make_http1_session(tcp::socket socket, std::shared_ptr<ServerCore> server,
                                               Lane& lane);

}  // namespace dispatch::transport
