// dispatchd: the standalone durable scheduler. Serves the Dispatch API
// (dispatch.sdk.v1.DispatchService) and its operations
// (dispatch.scheduler.v1.AdminService) over HTTP, keeps calls in a SQLite
// file (or in NATS JetStream, shared by many dispatchd processes), and
// delivers them to their endpoints' Run route.
//
//   dispatchd --db ./dispatch.db --listen 127.0.0.1:4450 --api-key secret
//   dispatchd --store nats://10.0.0.1:4222,10.0.0.2:4222 --listen 0.0.0.0:4450
//
// Not for: running functions (endpoints do that), TLS (use a proxy).
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "dispatch/jetstream/entity_store.h"
#include "dispatch/jetstream/jetstream_store.h"
#include "dispatch/metrics/registry.h"
#include "dispatch/scheduler/scheduler.h"
#include "dispatch/security/keys.h"
#include "dispatch/security/signature.h"
#include "dispatch/sqlite/sqlite_store.h"
#include "dispatch/statefun_runtime/runtime.h"
#include "dispatch/transport/server.h"

namespace {

constexpr const char* kUsage = R"(usage: dispatchd [options]

  --db PATH             store file (default ./dispatch.db; created if missing)
  --store nats://HOST:PORT[,HOST:PORT...]
                        keep calls in NATS JetStream instead (nats-server -js),
                        shared by every dispatchd given the same servers and
                        bucket: each call is leased by one of them at a time
                        (also DISPATCH_STORE, unless --db is given)
  --nats-bucket NAME    its key-value bucket (default dispatch_calls; also
                        DISPATCH_NATS_BUCKET); created if missing
  --nats-replicas N     copies of a new bucket in a NATS cluster: 1, 3 or 5
                        (default 1; also --replicas N, DISPATCH_NATS_REPLICAS)
  --nats-creds PATH     a NATS .creds file (also DISPATCH_NATS_CREDS); or
                        DISPATCH_NATS_USER and DISPATCH_NATS_PASSWORD, or
                        DISPATCH_NATS_TOKEN
  --nats-tls-ca PATH    connect to NATS over TLS, trusting the CA
                        certificates in this PEM file (also
                        DISPATCH_NATS_TLS_CA)
  --nats-tls-cert PATH --nats-tls-key PATH
                        a client certificate chain and its key (PEM) for
                        servers that ask for one; implies TLS (also
                        DISPATCH_NATS_TLS_CERT, DISPATCH_NATS_TLS_KEY)
  --nats-marker-grace DURATION
                        how long the delete marker a removed record leaves
                        stays in the bucket's stream before this dispatchd
                        deletes it (default 2m; 0 keeps markers; also
                        DISPATCH_NATS_MARKER_GRACE)
  --listen HOST:PORT    API address (default 127.0.0.1:4450; port 0 picks one)
  --api-key KEY         accept "Authorization: Bearer KEY" (repeatable; also
                        DISPATCH_API_KEY, comma-separated). None: no auth.
  --cors-origin ORIGIN  let web pages of this origin (scheme://host[:port], or *)
                        call the API from a browser: CORS preflights answered,
                        answers readable (repeatable; also
                        DISPATCH_CORS_ORIGINS, comma-separated). None: no CORS.
  --max-attempts N      deliveries before a failing call is given up (default 20, 0: no limit)
  --min-backoff-ms N    first retry waits up to this long (default 100)
  --max-backoff-ms N    retries wait at most this long (default 60000)
  --expiration-ms N     default expiration of a call (default 86400000; at least 1)
  --run-timeout-ms N    timeout of one Run call (default 300000; at least 1)
  --policy FUNCTION:KEY=VALUE[,KEY=VALUE...]
                        one function's own policy (repeatable): keys
                        max-attempts, min-backoff-ms, max-backoff-ms,
                        expiration-ms and run-timeout-ms, the rest as the
                        flags above; e.g. --policy shop.pay:max-attempts=5
                        (also DISPATCH_POLICIES, entries separated by ';')
  --lease DURATION      a running call whose dispatchd died (or lost its
                        store) is delivered again after this: a number and
                        s, m, h or d, longer than --run-timeout-ms (default
                        10m). With a store shared by several dispatchd, how
                        long the others wait before taking its calls over.
                        Also the lease of a stateful function's batch (then
                        longer than every StateFun endpoint's call timeout).
  --max-in-flight N     deliveries in flight in all (default 512)
  --retention DURATION  keep a call this long after it ended (completed, failed
                        or cancelled), then delete it and its idempotency key:
                        a number and s, m, h or d (default 7d; 0: keep every
                        call forever). Pending and running calls always stay.
  --statefun-module PATH
                        also run stateful functions (Apache Flink StateFun's
                        request-reply protocol): routes from StateFun's module
                        configuration YAML (kind: io.statefun.endpoints.v2/http);
                        with --store nats://, entities are kept in the bucket
                        NAME_entities beside the calls' (NAME: --nats-bucket)
  --statefun-max-attempts N
                        deliveries of a failing batch before it becomes a dead
                        letter (default 10, 0: no limit)
  --delivery-threads N  event-loop threads all endpoints' Run calls share
                        (default 0: one per core)
  --idle-connection-ms N  an endpoint connection unused this long is closed
                        (default 30000)
  --no-fsync            synchronous=NORMAL: survives kill -9, not power loss
  --port-file PATH      write the bound port there once listening
  --help

Signing of Run calls: DISPATCH_SIGNING_KEY (see docs/scheduler.md).
Logs go to stderr; level from DISPATCH_LOG_LEVEL (default info), format from
DISPATCH_LOG_FORMAT (text or json). GET /metrics: Prometheus metrics. The API
answers Connect, gRPC (HTTP/2) and gRPC-Web on the same address.
)";

constexpr const char* kExpireAtOnce = "fail every call without an expiration of its own at once, expired";
constexpr const char* kTimeOutAtOnce = "time every Run call out at once";

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "dispatchd: %s\n", message.c_str());
  std::exit(2);
}

long long number(const char* flag, const char* value) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < 0) {
    fail(std::string(flag) + " needs a non-negative number, got '" + value + "'");
  }
  return v;
}

// A number of milliseconds that 0 would make absurd rather than
// unlimited: `zero` says what 0 would do (every call expired, every Run
// timed out at once), since 0 means "no limit" for other flags.
std::chrono::milliseconds positive_ms(const std::string& flag, const std::string& value, const char* zero) {
  const long long v = number(flag.c_str(), value.c_str());
  if (v == 0) fail(flag + " must be at least 1 (0 would " + zero + ")");
  return std::chrono::milliseconds(v);
}

// number(), refused by name when it does not fit in T (a uint32_t attempt
// count given 5000000000 would otherwise wrap to 705032704).
template <class T>
T number_in(const std::string& flag, const std::string& value) {
  const long long v = number(flag.c_str(), value.c_str());
  if (static_cast<unsigned long long>(v) > static_cast<unsigned long long>(std::numeric_limits<T>::max())) {
    fail(flag + " " + value + " is too large (at most " + std::to_string(std::numeric_limits<T>::max()) + ")");
  }
  return static_cast<T>(v);
}

// "7d", "36h", "90m", "45s"; "0". `zero` says what 0 means in the errors
// ("keeps calls forever"), empty when it means nothing special.
std::chrono::milliseconds duration(const char* flag, const std::string& value, const std::string& zero) {
  const std::string usage = std::string(flag) + " needs a duration such as 7d, 36h, 90m or 45s" +
                            (zero.empty() ? "" : " (0 " + zero + ")") + ", got '" + value + "'";
  if (value == "0") return std::chrono::milliseconds(0);
  std::size_t digits = 0;
  while (digits < value.size() && value[digits] >= '0' && value[digits] <= '9') ++digits;
  if (digits == 0 || digits + 1 != value.size()) fail(usage);
  long long unit = 0;
  switch (value.back()) {
    case 's': unit = 1000; break;
    case 'm': unit = 60 * 1000; break;
    case 'h': unit = 3600 * 1000; break;
    case 'd': unit = 24 * 3600 * 1000; break;
    default: fail(usage);
  }
  errno = 0;
  const long long n = std::strtoll(value.c_str(), nullptr, 10);
  if (errno != 0 || n > std::numeric_limits<long long>::max() / unit) {
    fail(std::string(flag) + " " + value + " is too long" + (zero.empty() ? "" : "; 0 " + zero));
  }
  return std::chrono::milliseconds(n * unit);
}

// The non-empty pieces of `s` between `separator`s.
std::vector<std::string> split(const std::string& s, char separator = ',') {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t end = s.find(separator, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// One function's own policy as --policy FUNCTION:KEY=VALUE[,KEY=VALUE...]
// (or an entry of DISPATCH_POLICIES) gives it: the settings it names,
// applied over dispatchd's defaults once every flag is read.
struct PolicySpec {
  std::string function;
  std::optional<uint32_t> max_attempts;
  std::optional<std::chrono::milliseconds> min_backoff, max_backoff, expiration, run_timeout;
};

PolicySpec parse_policy(const std::string& from, const std::string& spec) {
  constexpr const char* kKeys = "max-attempts, min-backoff-ms, max-backoff-ms, expiration-ms, run-timeout-ms";
  const std::size_t colon = spec.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == spec.size()) {
    fail(from + " needs FUNCTION:KEY=VALUE[,KEY=VALUE...] (keys " + kKeys + "), got '" + spec + "'");
  }
  PolicySpec p;
  p.function = spec.substr(0, colon);
  for (const std::string& setting : split(spec.substr(colon + 1))) {
    const std::size_t eq = setting.find('=');
    const std::string key = setting.substr(0, eq);
    const std::string what = from + " " + p.function + ": " + key;
    if (eq == std::string::npos) fail(what + " needs a value (KEY=VALUE)");
    const std::string value = setting.substr(eq + 1);
    auto ms = [&] { return std::chrono::milliseconds(number(what.c_str(), value.c_str())); };
    if (key == "max-attempts") {
      p.max_attempts = number_in<uint32_t>(what, value);
    } else if (key == "min-backoff-ms") {
      p.min_backoff = ms();
    } else if (key == "max-backoff-ms") {
      p.max_backoff = ms();
    } else if (key == "expiration-ms") {
      p.expiration = positive_ms(what, value, kExpireAtOnce);
    } else if (key == "run-timeout-ms") {
      p.run_timeout = positive_ms(what, value, kTimeOutAtOnce);
    } else {
      fail(from + " " + p.function + ": unknown setting '" + key + "' (keys " + kKeys + ")");
    }
  }
  return p;
}

void apply(const PolicySpec& p, dispatch::scheduler::FunctionPolicy& to) {
  if (p.max_attempts) to.max_attempts = *p.max_attempts;
  if (p.min_backoff) to.min_backoff = *p.min_backoff;
  if (p.max_backoff) to.max_backoff = *p.max_backoff;
  if (p.expiration) to.expiration = *p.expiration;
  if (p.run_timeout) to.run_timeout = *p.run_timeout;
}

std::string describe(const dispatch::scheduler::FunctionPolicy& p) {
  return "max attempts " + (p.max_attempts == 0 ? std::string("unlimited") : std::to_string(p.max_attempts)) +
         ", backoff " + std::to_string(p.min_backoff.count()) + "-" + std::to_string(p.max_backoff.count()) +
         " ms, expiration " + std::to_string(p.expiration.count()) + " ms, run timeout " +
         std::to_string(p.run_timeout.count()) + " ms";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace dispatch;
  scheduler::SchedulerOptions options;
  scheduler::SqliteOptions sqlite;
  std::string nats_store;  // --store: empty is SQLite
  scheduler::JetStreamOptions nats;
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v != nullptr ? v : "";
  };
  // --store, from the flag or DISPATCH_STORE (either flag, --store or
  // --db, wins).
  bool db_given = false;
  auto set_store = [&](const std::string& from, const std::string& value) {
    nats_store = value;
    auto servers = scheduler::parse_nats_servers(nats_store);
    if (!servers.ok()) fail(from + ": " + servers.error().message() + "; for SQLite use --db PATH");
    nats.servers = std::move(servers).value();
  };
  if (std::string v = env("DISPATCH_NATS_BUCKET"); !v.empty()) nats.bucket = v;
  if (std::string v = env("DISPATCH_NATS_REPLICAS"); !v.empty()) {
    nats.replicas = static_cast<int>(number("DISPATCH_NATS_REPLICAS", v.c_str()));
  }
  nats.creds_file = env("DISPATCH_NATS_CREDS");
  nats.user = env("DISPATCH_NATS_USER");
  nats.password = env("DISPATCH_NATS_PASSWORD");
  nats.token = env("DISPATCH_NATS_TOKEN");
  nats.tls_ca_file = env("DISPATCH_NATS_TLS_CA");
  nats.tls_cert_file = env("DISPATCH_NATS_TLS_CERT");
  nats.tls_key_file = env("DISPATCH_NATS_TLS_KEY");
  if (std::string v = env("DISPATCH_NATS_MARKER_GRACE"); !v.empty()) {
    nats.marker_grace = duration("DISPATCH_NATS_MARKER_GRACE", v, "keeps markers");
  }
  std::string listen = "127.0.0.1:4450";
  std::string port_file;
  std::string retention = "7d";  // as given, for the log
  std::vector<std::string> api_keys;
  std::string statefun_module;
  uint32_t statefun_max_attempts = 10;
  ClientLoopsOptions delivery;
  if (const char* env = std::getenv("DISPATCH_API_KEY")) api_keys = split(env);
  std::vector<std::string> cors_origins;
  if (const char* env = std::getenv("DISPATCH_CORS_ORIGINS")) {
    auto parsed = parse_cors_origins(env, "DISPATCH_CORS_ORIGINS");
    if (!parsed.ok()) fail(parsed.error().message());
    cors_origins = std::move(*parsed);
  }
  // Applied in order once every flag is read: the environment's, then the
  // flags' (so a flag's setting wins over the environment's).
  std::vector<PolicySpec> policies;
  for (const std::string& entry : split(env("DISPATCH_POLICIES"), ';')) {
    policies.push_back(parse_policy("DISPATCH_POLICIES", entry));
  }

  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) fail(arg + " needs a value");
      return argv[++i];
    };
    auto ms = [&](const char* flag) { return std::chrono::milliseconds(number(flag, value())); };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--db") {
      sqlite.path = value();
      db_given = true;
    } else if (arg == "--store") {
      set_store("--store", value());
    } else if (arg == "--nats-bucket") {
      nats.bucket = value();
    } else if (arg == "--nats-replicas" || arg == "--replicas") {
      nats.replicas = number_in<int>(arg, value());
    } else if (arg == "--nats-creds") {
      nats.creds_file = value();
    } else if (arg == "--nats-tls-ca") {
      nats.tls_ca_file = value();
    } else if (arg == "--nats-tls-cert") {
      nats.tls_cert_file = value();
    } else if (arg == "--nats-tls-key") {
      nats.tls_key_file = value();
    } else if (arg == "--nats-marker-grace") {
      nats.marker_grace = duration("--nats-marker-grace", value(), "keeps markers");
    } else if (arg == "--listen") {
      listen = value();
    } else if (arg == "--api-key") {
      api_keys.push_back(value());
    } else if (arg == "--cors-origin") {
      // One origin a flag: a list in one is refused.
      const std::string origin = value();
      auto parsed = parse_cors_origins(origin, "--cors-origin");
      if (!parsed.ok()) fail(parsed.error().message());
      if (parsed->size() != 1) fail("--cors-origin takes one origin, got '" + origin + "'");
      cors_origins.push_back(parsed->front());
    } else if (arg == "--max-attempts") {
      options.default_policy.max_attempts = number_in<uint32_t>(arg, value());
    } else if (arg == "--min-backoff-ms") {
      options.default_policy.min_backoff = ms("--min-backoff-ms");
    } else if (arg == "--max-backoff-ms") {
      options.default_policy.max_backoff = ms("--max-backoff-ms");
    } else if (arg == "--expiration-ms") {
      options.default_policy.expiration = positive_ms(arg, value(), kExpireAtOnce);
    } else if (arg == "--run-timeout-ms") {
      options.default_policy.run_timeout = positive_ms(arg, value(), kTimeOutAtOnce);
    } else if (arg == "--policy") {
      policies.push_back(parse_policy("--policy", value()));
    } else if (arg == "--max-in-flight") {
      options.max_in_flight = static_cast<std::size_t>(number("--max-in-flight", value()));
    } else if (arg == "--lease") {
      options.lease = duration("--lease", value(), "");
    } else if (arg == "--retention") {
      retention = value();
      options.retention = duration("--retention", retention, "keeps calls forever");
    } else if (arg == "--statefun-module") {
      statefun_module = value();
    } else if (arg == "--statefun-max-attempts") {
      statefun_max_attempts = number_in<uint32_t>(arg, value());
    } else if (arg == "--delivery-threads") {
      delivery.threads = static_cast<std::size_t>(number("--delivery-threads", value()));
    } else if (arg == "--idle-connection-ms") {
      delivery.idle_timeout = ms("--idle-connection-ms");
    } else if (arg == "--no-fsync") {
      sqlite.fsync_commits = false;
    } else if (arg == "--port-file") {
      port_file = value();
    } else {
      fail("unknown option '" + arg + "' (see --help)");
    }
  }
  if (std::string v = env("DISPATCH_STORE"); nats_store.empty() && !db_given && !v.empty()) set_store("DISPATCH_STORE", v);
  if (options.max_in_flight == 0) fail("--max-in-flight must be at least 1");
  for (const PolicySpec& p : policies) {
    apply(p, options.policies.try_emplace(p.function, options.default_policy).first->second);
  }
  // `whose` run timeout, set by `flag`, must be shorter than the lease.
  auto lease_outlasts = [&](const scheduler::FunctionPolicy& policy, const std::string& whose, const char* flag) {
    if (options.lease <= policy.run_timeout) {
      fail("--lease (" + std::to_string(options.lease.count()) + " ms) must be longer than " + whose +
           " (" + std::to_string(policy.run_timeout.count()) + " ms, " + flag +
           "): a call still running would be delivered twice");
    }
  };
  lease_outlasts(options.default_policy, "the run timeout", "--run-timeout-ms");
  for (const auto& [function, policy] : options.policies) {
    lease_outlasts(policy, function + "'s run timeout", "--policy");
  }
  if (delivery.idle_timeout.count() == 0) fail("--idle-connection-ms must be at least 1");
  options.client_loops = std::make_shared<ClientLoops>(delivery);

  auto address = parse_listen_address(listen);
  if (!address.ok()) fail("--listen: " + address.error().message());

  Logger logger = Logger::from_env();
  options.logger = logger;
  for (const auto& [function, policy] : options.policies) {
    logger.log(LogLevel::info, "policy of " + function + ": " + describe(policy) + " (--policy)");
  }
  // Every Run call is signed (RFC 9421, Ed25519) when a key is configured;
  // endpoints verify it with the matching DISPATCH_VERIFICATION_KEY.
  auto signing_key = security::SigningKey::from_env("DISPATCH_SIGNING_KEY");
  if (!signing_key.ok()) fail(signing_key.error().message());
  if (signing_key->has_value()) {
    auto signer = std::make_shared<security::Signer>(**signing_key);
    options.decorate = [signer](std::string_view method, std::string_view path,
                                std::string_view authority, std::string_view content_type,
                                std::string_view body,
                                std::vector<std::pair<std::string, std::string>>& headers) {
      for (auto& h : signer->sign(method, path, authority, content_type, body)) {
        headers.push_back(std::move(h));
      }
    };
    logger.log(LogLevel::info, "signing Run calls with the key from DISPATCH_SIGNING_KEY (public key " +
                                   (*signing_key)->public_key().to_base64() + ")");
  } else {
    logger.log(LogLevel::warn, "DISPATCH_SIGNING_KEY is not set: Run calls are not signed, and "
                               "endpoints that verify signatures will refuse them");
  }

  logger.log(LogLevel::info, options.retention.count() == 0
                                 ? "keeping every call forever (--retention 0)"
                                 : "deleting calls " + retention + " after they end (--retention)");

  // One registry for the server, the scheduler and the store: GET /metrics
  // (docs/operations.md) shows all of them.
  auto registry = std::make_shared<metrics::Registry>();
  sqlite.metrics = registry;
  nats.metrics = registry;
  nats.logger = logger;
  options.metrics = registry;
  if (nats_store.empty()) {
    auto store = scheduler::open_sqlite_store(sqlite);
    if (!store.ok()) fail(store.error().message());
    options.store = std::move(store).value();
  } else {
    if (nats.replicas != 1 && nats.replicas != 3 && nats.replicas != 5) {
      fail("--nats-replicas must be 1, 3 or 5, not " + std::to_string(nats.replicas));
    }
    auto store = scheduler::open_jetstream_store(nats);
    if (!store.ok()) fail("--store " + nats_store + ": " + store.error().message());
    options.store = std::move(store).value();
    logger.log(LogLevel::info, "keeping calls in JetStream bucket " + nats.bucket + " at " + nats_store +
                                   ", shared with any other dispatchd on it");
  }
  scheduler::Store& store_ref = *options.store;
  const auto retention_window = options.retention;
  auto decorate = options.decorate;
  auto opened = scheduler::Scheduler::open(std::move(options));
  if (!opened.ok()) fail(opened.error().message());
  std::unique_ptr<scheduler::Scheduler> s = std::move(opened).value();

  // Stateful functions: the same store file, server and keys.
  std::unique_ptr<scheduler::EntityStore> nats_entities;  // outlives the runtime
  std::unique_ptr<statefun::Runtime> stateful;
  if (!statefun_module.empty()) {
    auto modules = statefun::ModuleConfig::load(statefun_module);
    if (!modules.ok()) fail("--statefun-module: " + modules.error().message());
    statefun::RuntimeOptions so;
    so.modules = std::move(modules).value();
    if (nats_store.empty()) {
      so.store = store_ref.entities();
    } else {
      // On JetStream, in a bucket beside the calls' ("<bucket>_entities"),
      // shared with any other dispatchd on it like the calls.
      auto entities = scheduler::open_jetstream_entity_store(nats);
      if (!entities.ok()) fail("--store " + nats_store + ": entities: " + entities.error().message());
      nats_entities = std::move(entities).value();
      so.store = nats_entities.get();
      logger.log(LogLevel::info, "keeping entities in JetStream bucket " + nats.bucket + "_entities");
    }
    // The entities' lease is the calls': how long the other dispatchd on a
    // shared store wait before taking over a dead one's addresses. A lease
    // shorter than a function's call timeout would deliver a slow batch
    // twice.
    so.lease = options.lease;
    for (const auto& e : so.modules.endpoints()) {
      if (e.settings.call_timeout >= so.lease) {
        fail("--lease (" + std::to_string(so.lease.count()) + " ms) must be longer than the call timeout (" +
             std::to_string(e.settings.call_timeout.count()) + " ms) of the StateFun endpoint in " + e.source);
      }
    }
    so.decorate = decorate;
    so.max_attempts = statefun_max_attempts;
    // Ingress keys and egress records are kept as long as calls; --retention
    // 0 keeps them for a century.
    so.retention = retention_window.count() > 0 ? retention_window
                                                : std::chrono::milliseconds(100LL * 365 * 24 * 3600 * 1000);
    so.logger = logger;
    const std::size_t routes = so.modules.endpoints().size();
    auto rt = statefun::Runtime::open(std::move(so));
    if (!rt.ok()) fail(rt.error().message());
    stateful = std::move(rt).value();
    logger.log(LogLevel::info, "stateful functions: " + std::to_string(routes) + " endpoint routes from " +
                                   statefun_module);
  }

  ServerOptions server_options;
  server_options.host = address->first;
  server_options.port = address->second;
  server_options.logger = logger;
  server_options.metrics = registry;
  server_options.cors_origins = std::move(cors_origins);
  // Dispatch requests wait for their group commit on a worker: more workers
  // let more requests share one commit.
  server_options.workers = 32;
  if (!api_keys.empty()) {
    // Constant-time comparison of keys (security::BearerKeys).
    auto keys = std::make_shared<security::BearerKeys>(api_keys);
    server_options.authenticate = [keys](const RequestInfo& request) -> Result<void> {
      auto checked = keys->authorize(request.header("authorization"));
      if (!checked.ok()) {
        return checked.error().with_context("send 'Authorization: Bearer $DISPATCH_API_KEY'");
      }
      return {};
    };
  } else {
    logger.log(LogLevel::warn, "no API key configured (--api-key / DISPATCH_API_KEY): the API is open");
  }

  DispatchTable table;
  if (auto added = s->add_to(table); !added.ok()) fail(added.error().message());
  if (stateful) {
    if (auto added = stateful->add_to(table); !added.ok()) fail(added.error().message());
  }
  // Clients awaiting results (Get with wait_ms) answer at once when the
  // server drains, rather than hold it for up to a minute each.
  server_options.on_drain = [sched = s.get()] { sched->end_waits(); };
  Server server(table, server_options);
  server.handle_signals();
  auto started = server.start();
  if (!started.ok()) fail(started.error().message());
  s->start();
  if (stateful) stateful->start();
  logger.log(LogLevel::info, "dispatchd listening on " + address->first + ":" +
                                 std::to_string(server.port()));
  if (!port_file.empty()) {
    // Written then renamed, so a reader never sees half a number.
    const std::string tmp = port_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%u\n", static_cast<unsigned>(server.port()));
      std::fclose(f);
      std::rename(tmp.c_str(), port_file.c_str());
    } else {
      fail("cannot write --port-file " + port_file);
    }
  }
  auto ran = server.run();
  if (stateful) stateful->stop();
  s->stop();
  logger.log(LogLevel::info, "dispatchd stopped");
  return ran.ok() ? 0 : 1;
}
