// CORS (the Fetch standard's cross-origin checks) for the server's answers:
// which Origin values ServerOptions::cors_origins allows, the answer to a
// preflight, and the fields an answer to an allowed origin carries.
// RequestHandler::serve() applies them to every HTTP request, over HTTP/1.1
// and HTTP/2.
//
// Not for: who may call (credentials, signatures: request_handler.cc); CORS
// only tells a browser which pages may read the answers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "transport/request_handler.h"

namespace dispatch::transport {

// "*", or an origin as browsers send it: scheme "://" host [":" port], no
// path, no trailing slash.
bool is_cors_origin(std::string_view s);

// Whether a request's `origin` (its Origin field) is allowed by `allowed`
// (ServerOptions::cors_origins): "*" allows any, else an exact match, the
// scheme and host compared without regard to case.
bool cors_allows(const std::vector<std::string>& allowed, std::string_view origin);

// Whether `request` is a preflight: OPTIONS with Access-Control-Request-Method.
bool is_cors_preflight(const Request& request);

// 204 to a preflight from an allowed `origin`: the origin, POST and GET,
// the fields it asked to send (Access-Control-Request-Headers), cached for
// two hours.
Response cors_preflight(const Request& request, std::string_view origin);

// The fields an answer to an allowed `origin` carries: the origin (with
// Vary: Origin) and the response fields gRPC-Web and Connect clients read
// (grpc-status, grpc-message, grpc-status-details-bin, the encodings), and
// any other field the answer already has (a function's own headers).
void add_cors_fields(Response& response, std::string_view origin);

}  // namespace dispatch::transport
