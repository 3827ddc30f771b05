// dispatch::scheduler::open_jetstream_store(): the scheduler's store on NATS
// JetStream, for many dispatchd processes sharing one store (and, with
// replicas, surviving the loss of a NATS node). Calls are records in one
// key-value bucket, changed only by compare-and-set on their revision, so a
// call is leased by one process at a time whichever process asks; every
// process keeps an index of the bucket from a watcher to find due calls.
// docs/scheduler.md ("JetStream store") has the design.
//
//   JetStreamOptions o;
//   o.servers = parse_nats_servers("nats://127.0.0.1:4222").value();
//   options.store = dispatch::scheduler::open_jetstream_store(o).value();
//
// entities() opens the stateful-functions runtime's store on first use
// (open_jetstream_entity_store(), entity_store.h: a bucket of its own).
//
// Not for: policy (the scheduler's). Held to the same contract as the SQLite store
// (store_conformance_test).
// Public header: compiles as C++17 and C++20.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/core/logger.h"
#include "dispatch/core/result.h"
#include "dispatch/scheduler/store.h"

namespace dispatch::metrics {
class Registry;
}  // namespace dispatch::metrics

namespace dispatch::scheduler {

struct JetStreamOptions {
  // "nats://host:port" URLs, tried in turn (parse_nats_servers()).
  std::vector<std::string> servers;
  // The key-value bucket the calls are kept in; created when missing.
  std::string bucket = "dispatch_calls";
  // Copies of the bucket in a NATS cluster when it is created (1, 3 or 5).
  int replicas = 1;
  // Credentials, when the servers ask for them: a user and password, a
  // token, or a .creds file (NATS decentralized auth). Empty: none.
  std::string user;
  std::string password;
  std::string token;
  std::string creds_file;
  // TLS to the servers (PEM files): the CA certificates that sign the
  // servers' certificates, and a client certificate chain with its key
  // when the servers ask for one (both or neither). Any of them set makes
  // the connection require TLS; a server whose certificate the CA did not
  // sign is refused (unavailable, saying so). Empty: plain TCP.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // How long a connection attempt and each request to the servers may take.
  std::chrono::milliseconds timeout{5000};
  // Effects of a transition (children of a Poll, a result for a parent, a
  // cancellation of descendants) or a batch of calls left unapplied this
  // long, by a process that died between its steps, are applied by any
  // process's recovery. Every process also applies all it finds at start.
  std::chrono::milliseconds recover_after{2000};
  // A removed record leaves a delete marker in the bucket's stream, which
  // would stay for ever (one per call, batch or message ever removed); the
  // process that wrote it, or that finds it listing the bucket at start,
  // deletes it from the stream this long after, when every process's
  // watcher has long had it. Only on a bucket this store created (nats.c
  // and the nats CLI make buckets that deny deleting messages; such a
  // bucket keeps its markers). Zero: markers are never deleted.
  std::chrono::milliseconds marker_grace{120000};
  // Where the store's rounds of writes are counted, as the SQLite store's
  // group commits (dispatch_store_commit_duration_seconds: one round sent
  // and answered; dispatch_store_commit_writes: the writes in it); unset:
  // not counted.
  std::shared_ptr<metrics::Registry> metrics;
  // Where what the servers refuse (a permission the NATS user lacks: the
  // server's text, naming the subject) is reported, as an error line.
  Logger logger = Logger::from_env();
};

// Connects, binds to the bucket (creating it when missing) and loads the
// index. unavailable when the servers cannot be reached; failed_precondition
// when the bucket exists with settings this store cannot use.
Result<std::unique_ptr<Store>> open_jetstream_store(const JetStreamOptions& options);

// "nats://h1:4222,h2:4222" (or "nats://h1:4222,nats://h2:4222") -> one URL
// per server; invalid_argument, naming the part, for anything else.
Result<std::vector<std::string>> parse_nats_servers(std::string_view spec);

}  // namespace dispatch::scheduler
