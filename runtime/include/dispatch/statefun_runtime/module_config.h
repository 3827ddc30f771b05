// dispatch::statefun::ModuleConfig: which endpoint serves which function
// type, read from Apache Flink StateFun's own module configuration (YAML,
// `kind: io.statefun.endpoints.v2/http`), so a StateFun user points dispatchd
// at the module.yaml they have:
//
//   kind: io.statefun.endpoints.v2/http
//   spec:
//     functions: com.example/*            # or com.example/greeter
//     urlPathTemplate: http://localhost:8000/statefun/{function.name}
//     transport:
//       timeouts: {call: 1 min, connect: 10 sec, read: 10 sec, write: 10 sec}
//     maxNumBatchRequests: 1000
//
// Documents are separated by `---`. Components of other kinds (Kafka or
// Kinesis ingresses and egresses) are Flink connectors: they are skipped with
// a warning. One kind of our own, `dispatch.statefun.v1/http-egress`
// (spec: `id: ns/name`, `url`, optional `timeout`), POSTs each record of an
// egress to a URL. docs/stateful.md has the details.
//
// Not for: running anything (the runtime reads routes from here).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/result.h"

namespace dispatch::statefun {

// Where one function type's batches go, and how.
struct FunctionEndpoint {
  std::string url;  // urlPathTemplate with {function.name} replaced
  std::chrono::milliseconds call_timeout{60'000};
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds write_timeout{10'000};
  std::size_t max_batch = 1000;  // maxNumBatchRequests
};

// One `io.statefun.endpoints.v2/http` component.
struct EndpointSpec {
  std::string target_namespace;
  std::string target_name;  // empty: every function of the namespace ("ns/*")
  std::string url_template;
  FunctionEndpoint settings;  // url unset
  std::string source;  // "module.yaml, document 2", for messages
};

// One `dispatch.statefun.v1/http-egress` component.
struct HttpEgressSpec {
  std::string egress;  // "namespace/name"
  std::string url;
  std::chrono::milliseconds timeout{10'000};
};

class ModuleConfig {
 public:
  // Parses YAML text; `source_name` names it in messages. Malformed YAML,
  // an endpoint without functions or urlPathTemplate, a pattern other than
  // "ns/name" or "ns/*", a URL scheme other than http:// or https://, a
  // duration that does not read, two components for one function type:
  // invalid_argument saying where and what.
  static Result<ModuleConfig> parse(std::string_view yaml, std::string_view source_name = "module.yaml");
  // Reads and parses a file.
  static Result<ModuleConfig> load(const std::string& path);

  // The endpoint of `function_type` ("ns/name"): a component naming that
  // type, else one for its namespace; nullopt when none serves it.
  std::optional<FunctionEndpoint> route(std::string_view function_type) const;

  const std::vector<EndpointSpec>& endpoints() const noexcept { return endpoints_; }
  const std::vector<HttpEgressSpec>& http_egresses() const noexcept { return egresses_; }
  // Components that were skipped, one line each ("document 3: kind
  // io.statefun.kafka.v1/ingress is a Flink connector; skipped").
  const std::vector<std::string>& warnings() const noexcept { return warnings_; }

 private:
  std::vector<EndpointSpec> endpoints_;
  std::vector<HttpEgressSpec> egresses_;
  std::vector<std::string> warnings_;
};

// A Flink duration ("1 min", "10sec", "500 ms", "2h"; a bare number is
// milliseconds). invalid_argument for anything else.
Result<std::chrono::milliseconds> parse_flink_duration(std::string_view text);

// "namespace/name" split at its last '/' (StateFun's rule); nullopt when
// either part is empty.
std::optional<std::pair<std::string, std::string>> split_typename(std::string_view type_name);

}  // namespace dispatch::statefun
