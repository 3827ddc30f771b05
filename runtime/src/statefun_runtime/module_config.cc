// StateFun's module configuration read with yaml-cpp; see module_config.h.
// The rules follow StateFun's HttpEndpointBinderV2 and TargetFunctions: a
// function pattern is "ns/name" or "ns/*", `{function.name}` in the URL
// template is the function's name, unset settings keep StateFun's defaults.
#include "dispatch/statefun_runtime/module_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace dispatch::statefun {
namespace {

constexpr std::string_view kEndpointKind = "io.statefun.endpoints.v2/http";
constexpr std::string_view kHttpEgressKind = "dispatch.statefun.v1/http-egress";
constexpr std::string_view kFunctionName = "{function.name}";

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// A scalar's text, or an error naming the key.
Result<std::string> scalar(const YAML::Node& node, const std::string& where, const char* key) {
  if (!node.IsScalar()) {
    return Error(Code::invalid_argument, where + ": '" + key + "' must be a single value");
  }
  return node.Scalar();
}

Error at(const std::string& where, const std::string& what) {
  return Error(Code::invalid_argument, where + ": " + what);
}

Result<std::chrono::milliseconds> duration_at(const YAML::Node& node, const std::string& where,
                                              const std::string& key) {
  auto text = scalar(node, where, key.c_str());
  if (!text.ok()) return std::move(text).error();
  auto d = parse_flink_duration(*text);
  if (!d.ok()) return at(where, key + ": " + d.error().message());
  if (d->count() <= 0) return at(where, key + " must be positive, got '" + *text + "'");
  return d;
}

bool valid_url(std::string_view url) {
  return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
}

}  // namespace

Result<std::chrono::milliseconds> parse_flink_duration(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  const std::size_t digits_at = i;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == digits_at) {
    return Error(Code::invalid_argument, "'" + std::string(text) +
                                             "' is not a duration (a number and a unit: '10 s', '1 min', "
                                             "'500 ms'; a bare number is milliseconds)");
  }
  const std::string digits(text.substr(digits_at, i - digits_at));
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  std::size_t end = text.size();
  while (end > i && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  const std::string unit = lower(text.substr(i, end - i));
  // Flink's TimeUtils units, as nanoseconds per unit.
  struct Unit {
    const char* names[5];
    long double ns;
  };
  static const Unit kUnits[] = {
      {{"ns", "nano", "nanos", "nanosecond", "nanoseconds"}, 1},
      {{"us", "micro", "micros", "microsecond", "microseconds"}, 1e3},
      {{"ms", "milli", "millis", "millisecond", "milliseconds"}, 1e6},
      {{"s", "sec", "secs", "second", "seconds"}, 1e9},
      {{"m", "min", "minute", "minutes", nullptr}, 60e9},
      {{"h", "hour", "hours", nullptr, nullptr}, 3600e9},
      {{"d", "day", "days", nullptr, nullptr}, 86400e9},
  };
  long double ns_per_unit = unit.empty() ? 1e6 : 0;
  for (const Unit& u : kUnits) {
    for (const char* name : u.names) {
      if (name != nullptr && unit == name) ns_per_unit = u.ns;
    }
  }
  if (ns_per_unit == 0) {
    return Error(Code::invalid_argument, "'" + std::string(text) + "' has an unknown time unit '" + unit +
                                             "' (use ms, s, min, h or d)");
  }
  if (digits.size() > 15) return Error(Code::invalid_argument, "'" + std::string(text) + "' is too long");
  const long double ms = std::stold(digits) * ns_per_unit / 1e6L;
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

std::optional<std::pair<std::string, std::string>> split_typename(std::string_view type_name) {
  const std::size_t slash = type_name.rfind('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == type_name.size()) return std::nullopt;
  return std::make_pair(std::string(type_name.substr(0, slash)), std::string(type_name.substr(slash + 1)));
}

Result<ModuleConfig> ModuleConfig::parse(std::string_view yaml, std::string_view source_name) {
  ModuleConfig config;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Error(Code::invalid_argument, std::string(source_name) + ":" + std::to_string(e.mark.line + 1) + ":" +
                                             std::to_string(e.mark.column + 1) + ": not valid YAML: " + e.msg);
  }
  int n = 0;
  for (const YAML::Node& doc : docs) {
    ++n;
    const std::string where = std::string(source_name) + ", document " + std::to_string(n);
    if (doc.IsNull()) continue;
    if (!doc.IsMap()) return at(where, "a module component is a map with 'kind' and 'spec'");
    if (doc["module"]) {
      return at(where,
                "this is the StateFun 2.x / 3.0 'module:' format; dispatchd reads the 3.1+ format, one "
                "component per document (kind: io.statefun.endpoints.v2/http, spec: ...)");
    }
    if (!doc["kind"]) return at(where, "missing 'kind'");
    auto kind = scalar(doc["kind"], where, "kind");
    if (!kind.ok()) return std::move(kind).error();
    const YAML::Node spec = doc["spec"];
    if (*kind != kEndpointKind && *kind != kHttpEgressKind) {
      config.warnings_.push_back(where + ": kind " + *kind +
                                 " is not run by dispatchd (Flink connectors are not); skipped");
      continue;
    }
    if (!spec || !spec.IsMap()) return at(where, "missing 'spec' (a map)");
    try {
      if (*kind == kHttpEgressKind) {
        HttpEgressSpec e;
        if (!spec["id"]) return at(where, "an http-egress needs 'id: namespace/name'");
        auto id = scalar(spec["id"], where, "id");
        if (!id.ok()) return std::move(id).error();
        if (!split_typename(*id)) return at(where, "id '" + *id + "' is not 'namespace/name'");
        e.egress = *id;
        if (!spec["url"]) return at(where, "an http-egress needs 'url'");
        auto url = scalar(spec["url"], where, "url");
        if (!url.ok()) return std::move(url).error();
        if (!valid_url(*url)) return at(where, "url '" + *url + "' is not an http:// or https:// URL");
        e.url = *url;
        if (spec["timeout"]) {
          auto t = duration_at(spec["timeout"], where, "timeout");
          if (!t.ok()) return std::move(t).error();
          e.timeout = *t;
        }
        for (const HttpEgressSpec& other : config.egresses_) {
          if (other.egress == e.egress) return at(where, "egress " + e.egress + " is configured twice");
        }
        config.egresses_.push_back(std::move(e));
        continue;
      }
      EndpointSpec ep;
      ep.source = where;
      if (!spec["functions"]) return at(where, "missing spec.functions (\"namespace/name\" or \"namespace/*\")");
      auto functions = scalar(spec["functions"], where, "functions");
      if (!functions.ok()) return std::move(functions).error();
      auto parts = split_typename(*functions);
      if (!parts || parts->first.find('*') != std::string::npos ||
          (parts->second != "*" && parts->second.find('*') != std::string::npos)) {
        return at(where, "spec.functions '" + *functions +
                             "' is not a function type: use <namespace>/<name> or <namespace>/*");
      }
      ep.target_namespace = parts->first;
      if (parts->second != "*") ep.target_name = parts->second;
      if (!spec["urlPathTemplate"]) return at(where, "missing spec.urlPathTemplate");
      auto url = scalar(spec["urlPathTemplate"], where, "urlPathTemplate");
      if (!url.ok()) return std::move(url).error();
      if (url->rfind("http+unix://", 0) == 0) {
        return at(where, "urlPathTemplate '" + *url + "': http+unix endpoints are not supported by dispatchd; "
                                                      "listen on a TCP port");
      }
      if (!valid_url(*url)) return at(where, "urlPathTemplate '" + *url + "' is not an http:// or https:// URL");
      ep.url_template = *url;
      if (spec["maxNumBatchRequests"]) {
        auto m = scalar(spec["maxNumBatchRequests"], where, "maxNumBatchRequests");
        if (!m.ok()) return std::move(m).error();
        if (m->empty() || m->size() > 9 ||
            !std::all_of(m->begin(), m->end(), [](unsigned char c) { return std::isdigit(c); }) ||
            std::stoul(*m) == 0) {
          return at(where, "spec.maxNumBatchRequests must be a positive number, got '" + *m + "'");
        }
        ep.settings.max_batch = std::stoul(*m);
      }
      // Timeouts under spec.transport.timeouts (the default transport) or
      // spec.transport itself (the async transport's call/connect), or
      // spec.timeouts (as written by older modules).
      std::vector<YAML::Node> holders;
      if (spec["timeouts"]) holders.push_back(spec["timeouts"]);
      if (const YAML::Node transport = spec["transport"]) {
        if (!transport.IsMap()) return at(where, "spec.transport must be a map");
        holders.push_back(transport);
        if (transport["timeouts"]) holders.push_back(transport["timeouts"]);
      }
      for (const YAML::Node& h : holders) {
        if (!h.IsMap()) return at(where, "timeouts must be a map (call, connect, read, write)");
        const std::pair<const char*, std::chrono::milliseconds*> keys[] = {
            {"call", &ep.settings.call_timeout},
            {"connect", &ep.settings.connect_timeout},
            {"read", &ep.settings.read_timeout},
            {"write", &ep.settings.write_timeout}};
        for (const auto& [key, slot] : keys) {
          if (!h[key]) continue;
          auto d = duration_at(h[key], where, std::string("timeouts.") + key);
          if (!d.ok()) return std::move(d).error();
          *slot = *d;
        }
      }
      for (const EndpointSpec& other : config.endpoints_) {
        if (other.target_namespace == ep.target_namespace && other.target_name == ep.target_name) {
          return at(where, "functions '" + *functions + "' are already served by " + other.source);
        }
      }
      config.endpoints_.push_back(std::move(ep));
    } catch (const YAML::Exception& e) {
      return at(where, std::string("line ") + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
  }
  return config;
}

Result<ModuleConfig> ModuleConfig::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(Code::not_found, "cannot read the module configuration " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

std::optional<FunctionEndpoint> ModuleConfig::route(std::string_view function_type) const {
  auto parts = split_typename(function_type);
  if (!parts) return std::nullopt;
  const EndpointSpec* found = nullptr;
  for (const EndpointSpec& ep : endpoints_) {
    if (ep.target_namespace != parts->first) continue;
    if (ep.target_name == parts->second) {
      found = &ep;
      break;
    }
    if (ep.target_name.empty() && found == nullptr) found = &ep;
  }
  if (found == nullptr) return std::nullopt;
  FunctionEndpoint out = found->settings;
  out.url = found->url_template;
  for (std::size_t at = out.url.find(kFunctionName); at != std::string::npos;
       at = out.url.find(kFunctionName, at + parts->second.size())) {
    out.url.replace(at, kFunctionName.size(), parts->second);
  }
  return out;
}

}  // namespace dispatch::statefun
