// The runtime's default Poster: one dispatch::HttpClient per origin
// (scheme, host and port) in plain-POST mode with StateFun's content type
// (application/octet-stream), made on first use and kept.
//
// Not for: Connect calls (the scheduler's clients).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dispatch/statefun_runtime/runtime.h"

namespace dispatch::statefun {

// `decorate` runs on every request (e.g. to sign it); may be empty.
Poster http_poster(std::function<void(std::string_view method, std::string_view path, std::string_view authority,
                                      std::string_view content_type, std::string_view body,
                                      std::vector<std::pair<std::string, std::string>>& headers)>
                       decorate);

}  // namespace dispatch::statefun
