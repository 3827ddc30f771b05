// nats.c's key-value API behind Results: one connection and one bucket per
// Kv. A compare-and-set that loses its race is not an error here (nullopt):
// it is how the store learns that another process got there first.
//
// Not for: the store's records (jetstream_store.cc).
#include "jetstream/kv.h"

#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include "dispatch/metrics/registry.h"

namespace dispatch::scheduler::jetstream {
namespace {

// NATS's text for the failure `s`. nats.c keeps a thread's last error text
// across calls and not every failure sets one (a request to servers that
// are away can fail with only a status), so the text is the failure's only
// when its status is `s`; the status's own text otherwise.
Error nats_error(Code code, const std::string& what, natsStatus s) {
  natsStatus last = NATS_OK;
  const char* text = nats_GetLastError(&last);
  std::string detail = last == s && text != nullptr && *text != '\0' ? text : natsStatus_GetText(s);
  if (s == NATS_MAX_PAYLOAD) {
    detail += " (the NATS servers' max_payload bounds each record, a call with its input and output: raise "
              "max_payload on every server, or keep inputs and outputs smaller)";
  }
  return Error(code, what + ": " + detail);
}

Code code_for(natsStatus s) { return code_for_nats_status(static_cast<int>(s)); }

// nats.c's asynchronous error callback (its own thread): a permission
// violation comes only this way, its text as the thread's last error.
void on_async_error(natsConnection*, natsSubscription*, natsStatus err, void* closure) {
  if (err != NATS_NOT_PERMITTED) return;  // the rest (a slow consumer...) is seen where it matters
  const char* text = nats_GetLastError(nullptr);
  static_cast<Kv*>(closure)->refused(text != nullptr && *text != '\0' ? text : natsStatus_GetText(err));
}
// After the connection's last callback (nats.c runs them in order on one
// thread): the Kv they point to may go.
void on_closed(natsConnection*, void* closure) { static_cast<Kv*>(closure)->closed(); }
// The connection lost and made again (nats.c's callback thread).
void on_disconnected(natsConnection*, void* closure) { static_cast<Kv*>(closure)->connection_lost(); }
void on_reconnected(natsConnection*, void* closure) { static_cast<Kv*>(closure)->connection_back(); }

// A read's failure: as code_for(), and unavailable for JetStream's own
// "temporarily unavailable" (10008: the stream has no leader while its
// replicas elect one), which nats.c's kvStore_Get reports only as NATS_ERR
// with the server's text (it passes no error code out), so a caller retries
// a read during a failover as it retries a write.
Code read_code(natsStatus s) {
  if (s != NATS_ERR) return code_for(s);
  natsStatus last = NATS_OK;
  const char* text = nats_GetLastError(&last);
  const bool leaderless = last == s && text != nullptr && std::strstr(text, "temporarily unavailable") != nullptr;
  return leaderless ? Code::unavailable : Code::internal;
}

// A value the store writes (a call with its input, results and effects)
// fits in NATS's default maximum payload; a bucket must take that.
constexpr int32_t kMinValueSize = 1024 * 1024;

// write_all()'s writes in flight at once; a longer list goes in rounds.
constexpr int64_t kMaxInFlight = 1024;

// The hint of a bucket that cannot be made or opened: JetStream may be off
// on the server, or only for the account of the user the store connects as
// (an account without `jetstream: enabled` in the server's configuration).
constexpr const char* kNoJetStream =
    " (is JetStream enabled on the server, nats-server -js, and for the account of the NATS user given?)";

// What the store needs of a bucket, whoever made it: calls that do not
// expire, are kept on disk, fit whatever the store writes, with one value
// per key (the store's compare-and-set and watcher assume it), on as many
// servers as asked for. failed_precondition naming the first setting that
// differs.
Result<void> check_bucket(const jsStreamConfig& c, const JetStreamOptions& o) {
  const std::string bucket = "JetStream bucket " + o.bucket;
  auto refuse = [&](const std::string& what) {
    return Error(Code::failed_precondition, bucket + " " + what + ": use another bucket (--nats-bucket), or "
                                                                 "delete this one so that dispatchd makes it");
  };
  if (c.MaxAge != 0) {
    return refuse("has a TTL (" + std::to_string(c.MaxAge / 1'000'000) +
                  " ms); the scheduler's calls must not expire on their own");
  }
  if (c.Storage != js_FileStorage) return refuse("keeps its values in memory (storage type); calls must be kept on disk");
  if (c.MaxMsgsPerSubject != 1) {
    return refuse("keeps a history of " + std::to_string(c.MaxMsgsPerSubject) +
                  " values per key; the store needs history 1");
  }
  if (c.MaxMsgSize > 0 && c.MaxMsgSize < kMinValueSize) {
    return refuse("limits values to " + std::to_string(c.MaxMsgSize) + " bytes (max value size); a call needs up to " +
                  std::to_string(kMinValueSize));
  }
  if (c.Replicas != o.replicas) {
    return Error(Code::failed_precondition, bucket + " has " + std::to_string(c.Replicas) + " replicas, not the " +
                                                std::to_string(o.replicas) + " asked for: ask for " +
                                                std::to_string(c.Replicas) + ", or use another bucket");
  }
  return {};
}

// TLS as the options ask: required once any file is given; each file's
// failure names it.
Result<void> set_tls(natsOptions* opts, const JetStreamOptions& o) {
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return Error(Code::invalid_argument,
                 "a NATS client certificate needs both its chain and its key (" +
                     std::string(o.tls_cert_file.empty() ? "the certificate" : "the key") + " is missing)");
  }
  if (o.tls_ca_file.empty() && o.tls_cert_file.empty()) return {};
  natsStatus s = natsOptions_SetSecure(opts, true);
  if (s != NATS_OK) return nats_error(Code::invalid_argument, "NATS TLS", s);
  if (!o.tls_ca_file.empty()) {
    s = natsOptions_LoadCATrustedCertificates(opts, o.tls_ca_file.c_str());
    if (s != NATS_OK) {
      return nats_error(Code::invalid_argument, "NATS TLS CA certificates " + o.tls_ca_file + " (PEM)", s);
    }
  }
  if (!o.tls_cert_file.empty()) {
    s = natsOptions_LoadCertificatesChain(opts, o.tls_cert_file.c_str(), o.tls_key_file.c_str());
    if (s != NATS_OK) {
      return nats_error(Code::invalid_argument,
                        "NATS TLS client certificate " + o.tls_cert_file + " and key " + o.tls_key_file + " (PEM)",
                        s);
    }
  }
  return {};
}

}  // namespace

Code code_for_nats_status(int status) {
  switch (static_cast<natsStatus>(status)) {
    case NATS_NO_SERVER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_TIMEOUT:
    case NATS_STALE_CONNECTION:
    case NATS_NO_RESPONDERS:
    // A socket error: the connection to the server broke under the request
    // (the server killed, a reset); nats.c reconnects by itself.
    case NATS_IO_ERROR:
    case NATS_NOT_YET_CONNECTED:
      return Code::unavailable;
    // A record larger than the servers take: it never fits, however often
    // it is tried (the scheduler fails the call whose outcome it is).
    case NATS_MAX_PAYLOAD:
      return Code::out_of_range;
    default:
      return Code::internal;
  }
}

// Deletes delete markers from the stream once `grace` has passed since
// they were handed over, oldest first, one at a time, on a thread of its
// own; while the servers are away it tries again a second later. Markers
// still waiting when the store closes stay (a later start finds them
// listing the bucket). Past kMaxWaiting waiting, more are left too.
class Kv::Sweeper {
 public:
  Sweeper(Kv& kv, std::chrono::milliseconds grace, metrics::Counter* deleted)
      : kv_(kv), grace_(grace), deleted_(deleted), thread_([this] { run(); }) {}
  ~Sweeper() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void add(uint64_t revision) {
    std::lock_guard<std::mutex> lock(mu_);
    if (waiting_.size() >= kMaxWaiting) return;
    waiting_.push_back({Clock::now() + grace_, revision});
    if (waiting_.size() == 1) cv_.notify_one();
  }
  uint64_t swept() const { return swept_.load(); }

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kMaxWaiting = std::size_t{1} << 22;

  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      if (waiting_.empty()) {
        cv_.wait(lock);
        continue;
      }
      const auto [due, revision] = waiting_.front();
      if (Clock::now() < due) {
        cv_.wait_until(lock, due);
        continue;
      }
      waiting_.pop_front();
      lock.unlock();
      Result<bool> deleted = kv_.delete_marker(revision);
      lock.lock();
      if (deleted.ok()) {
        if (*deleted) {
          ++swept_;
          if (deleted_ != nullptr) deleted_->inc();
        }
        if (failing_) {
          failing_ = false;
          kv_.logger_.log(LogLevel::info, "deleting the delete markers of JetStream bucket " + kv_.bucket_ + " again");
        }
        continue;
      }
      const bool again = deleted.error().code() == Code::unavailable;
      if (again) waiting_.push_front({Clock::now() + std::chrono::seconds(1), revision});
      // Anything else: left (a later start lists it, and tries again).
      const auto now = Clock::now();
      if (!failing_ || now - last_logged_ >= std::chrono::minutes(1)) {
        failing_ = true;
        last_logged_ = now;
        kv_.logger_.log(LogLevel::warn,
                        "cannot delete the delete markers of JetStream bucket " + kv_.bucket_ + " (" +
                            std::to_string(waiting_.size()) + " waiting): " + deleted.error().message() +
                            (again ? "; trying again every second" : "; this one is left") +
                            " (--nats-marker-grace 0 keeps them instead)");
      }
    }
  }

  Kv& kv_;
  const std::chrono::milliseconds grace_;
  metrics::Counter* const deleted_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Clock::time_point, uint64_t>> waiting_;  // guarded by mu_
  bool stopping_ = false;                                       // guarded by mu_
  std::atomic<uint64_t> swept_{0};
  bool failing_ = false;          // the last deletion failed (guarded by mu_)
  Clock::time_point last_logged_;  // when that was last logged (guarded by mu_)
  std::thread thread_;            // last: starts once the rest is made
};

Result<std::unique_ptr<Kv>> Kv::open(const JetStreamOptions& o) {
  if (o.servers.empty()) return Error(Code::invalid_argument, "no NATS server to connect to");
  if (o.bucket.empty()) return Error(Code::invalid_argument, "the JetStream bucket name is empty");
  if (o.replicas != 1 && o.replicas != 3 && o.replicas != 5) {
    return Error(Code::invalid_argument,
                 "replicas must be 1, 3 or 5, not " + std::to_string(o.replicas));
  }
  std::unique_ptr<Kv> kv(new Kv());
  kv->bucket_ = o.bucket;
  kv->logger_ = o.logger;
  kv->stream_ = "KV_" + o.bucket;
  kv->subject_prefix_ = "$KV." + o.bucket + ".";
  std::string where;
  for (const std::string& s : o.servers) where += (where.empty() ? "" : ",") + s;

  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  std::vector<const char*> urls;
  for (const std::string& u : o.servers) urls.push_back(u.c_str());
  if (s == NATS_OK) s = natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, o.timeout.count());
  if (s == NATS_OK) s = natsOptions_SetName(opts, "dispatchd");
  if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts, &on_async_error, kv.get());
  if (s == NATS_OK) s = natsOptions_SetClosedCB(opts, &on_closed, kv.get());
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, &on_disconnected, kv.get());
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, &on_reconnected, kv.get());
  // Reconnect for ever: a store whose servers went away answers
  // unavailable meanwhile and carries on when they are back.
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK && !o.user.empty()) s = natsOptions_SetUserInfo(opts, o.user.c_str(), o.password.c_str());
  if (s == NATS_OK && !o.token.empty()) s = natsOptions_SetToken(opts, o.token.c_str());
  if (s == NATS_OK && !o.creds_file.empty()) {
    s = natsOptions_SetUserCredentialsFromFiles(opts, o.creds_file.c_str(), nullptr);
  }
  if (s != NATS_OK) {
    natsOptions_Destroy(opts);
    return nats_error(Code::invalid_argument, "NATS connection options for " + where, s);
  }
  if (Result<void> tls = set_tls(opts, o); !tls.ok()) {
    natsOptions_Destroy(opts);
    return tls.error();
  }
  s = natsConnection_Connect(&kv->nc_, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    const bool tls = !o.tls_ca_file.empty() || !o.tls_cert_file.empty();
    return nats_error(Code::unavailable,
                      "cannot connect to NATS at " + where +
                          (s == NATS_SSL_ERROR && tls ? " over TLS (is the server's certificate signed by the CA "
                                                        "given, and does it name the host connected to?)"
                                                      : ""),
                      s);
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = o.timeout.count();
  s = natsConnection_JetStream(&kv->js_, kv->nc_, &jo);
  if (s != NATS_OK) return nats_error(Code::internal, "JetStream context for " + where, s);
  kv->timeout_ms_ = o.timeout.count();
  jsOptions async;
  jsOptions_Init(&async);
  async.Wait = o.timeout.count();
  async.PublishAsync.AckHandler = &Kv::on_ack;
  async.PublishAsync.AckHandlerClosure = kv.get();
  async.PublishAsync.MaxPending = kMaxInFlight;
  s = natsConnection_JetStream(&kv->js_async_, kv->nc_, &async);
  if (s != NATS_OK) return nats_error(Code::internal, "JetStream context for " + where, s);

  s = js_KeyValue(&kv->kv_, kv->js_, o.bucket.c_str());
  if (s == NATS_NOT_FOUND) {
    // The stream a bucket is, as nats.c's js_CreateKeyValue makes it
    // (history 1, file storage, rollups, direct gets, new writes refused
    // when full) but for one setting: deleting a message is allowed, so
    // the delete markers removals leave can be deleted (Sweeper).
    const std::string subjects = "$KV." + o.bucket + ".>";
    const char* subject_list[] = {subjects.c_str()};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = kv->stream_.c_str();
    sc.Description = "dispatchd's calls (dispatch::scheduler JetStream store)";
    sc.Subjects = subject_list;
    sc.SubjectsLen = 1;
    sc.MaxMsgsPerSubject = 1;
    sc.MaxBytes = -1;
    sc.MaxMsgSize = -1;
    sc.Storage = js_FileStorage;
    sc.Replicas = o.replicas;
    sc.AllowRollup = true;
    sc.DenyDelete = false;
    sc.AllowDirect = true;
    sc.Discard = js_DiscardNew;
    jsStreamInfo* made = nullptr;
    jsErrCode made_err = static_cast<jsErrCode>(0);
    s = js_AddStream(&made, kv->js_, &sc, nullptr, &made_err);
    if (made != nullptr) jsStreamInfo_Destroy(made);
    if (s == NATS_OK) s = js_KeyValue(&kv->kv_, kv->js_, o.bucket.c_str());
    if (s != NATS_OK) {
      // The server's reason, read before anything else can replace it: a
      // cluster with fewer JetStream servers than replicas asked for
      // answers "no suitable peers for placement".
      natsStatus last = NATS_OK;
      const char* text = nats_GetLastError(&last);
      const bool no_room = o.replicas > 1 && last == s && text != nullptr &&
                           std::string_view(text).find("no suitable peers for placement") != std::string_view::npos;
      Error failed = kv->failure(code_for(s) == Code::unavailable ? Code::unavailable : Code::failed_precondition,
                                 "cannot create JetStream bucket " + o.bucket + " at " + where +
                                     (no_room ? " with " + std::to_string(o.replicas) +
                                                    " replicas: that needs at least " + std::to_string(o.replicas) +
                                                    " JetStream servers in the cluster (fewer replicas: "
                                                    "--nats-replicas)"
                                              : kNoJetStream),
                                 s);
      // Another dispatchd starting at the same moment may have made it.
      // The server does not always answer such a race with the bucket it
      // made: nats-server 2.9 checks a new stream's name and its subjects
      // under separate locks, so the loser of a close race is told
      // "subjects overlap with an existing stream". Whoever made the
      // bucket, its settings are checked below.
      if (js_KeyValue(&kv->kv_, kv->js_, o.bucket.c_str()) != NATS_OK) return failed;
    }
  } else if (s != NATS_OK) {
    return kv->failure(code_for(s) == Code::unavailable ? Code::unavailable : Code::failed_precondition,
                       "cannot open JetStream bucket " + o.bucket + " at " + where +
                           kNoJetStream,
                       s);
  }
  // A bucket someone else made must keep calls the way the store needs.
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  s = js_GetStreamInfo(&si, kv->js_, ("KV_" + o.bucket).c_str(), nullptr, &jerr);
  if (s != NATS_OK) return kv->failure(code_for(s), "settings of JetStream bucket " + o.bucket, s);
  Result<void> usable = check_bucket(*si->Config, o);
  if (!usable.ok()) {
    jsStreamInfo_Destroy(si);
    return usable.error();
  }
  if (!si->Config->DenyDelete && o.marker_grace.count() > 0) {
    metrics::Counter* deleted =
        o.metrics == nullptr
            ? nullptr
            : &o.metrics->counter("dispatch_store_delete_markers_deleted_total",
                                  "Delete markers (left by removed records) the JetStream store deleted from its "
                                  "bucket's stream after their grace, by bucket.",
                                  {{"bucket", o.bucket}});
    kv->sweeper_ = std::make_unique<Sweeper>(*kv, o.marker_grace, deleted);
  }
  // With replicas, reads from the bucket's leader only. nats.c makes
  // buckets with direct gets, which any replica answers, a follower too,
  // that may not have the latest write yet; the store decides on what it
  // reads (a child's result is dropped when its parent does not list it
  // yet). Turned off here, for buckets made before too. One server (R1)
  // keeps them: there every get is the leader's, and direct gets skip the
  // JetStream API's queue.
  if (si->Config->AllowDirect && si->Config->Replicas > 1) {
    si->Config->AllowDirect = false;
    jsStreamInfo* updated = nullptr;
    s = js_UpdateStream(&updated, kv->js_, si->Config, nullptr, &jerr);
    if (updated != nullptr) jsStreamInfo_Destroy(updated);
    if (s == NATS_OK) {
      kvStore_Destroy(kv->kv_);
      kv->kv_ = nullptr;
      s = js_KeyValue(&kv->kv_, kv->js_, o.bucket.c_str());
    }
    if (s != NATS_OK) {
      jsStreamInfo_Destroy(si);
      return kv->failure(code_for(s), "turning direct gets off for JetStream bucket " + o.bucket, s);
    }
  }
  jsStreamInfo_Destroy(si);
  return kv;
}

Kv::~Kv() {
  sweeper_.reset();  // before the connection it uses
  if (kv_ != nullptr) kvStore_Destroy(kv_);
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (js_async_ != nullptr) jsCtx_Destroy(js_async_);
  if (nc_ != nullptr) {
    {
      std::lock_guard<std::mutex> lock(refused_mu_);
      closing_ = true;  // its disconnection is not news
    }
    natsConnection_Close(nc_);
    std::unique_lock<std::mutex> lock(refused_mu_);
    (void)closed_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return closed_; });
    lock.unlock();
    natsConnection_Destroy(nc_);
  }
}

void Kv::closed() {
  std::lock_guard<std::mutex> lock(refused_mu_);
  closed_ = true;
  closed_cv_.notify_all();
}

void Kv::connection_lost() {
  {
    std::lock_guard<std::mutex> lock(refused_mu_);
    if (closing_ || lost_) return;
    lost_ = true;
    lost_at_ = std::chrono::steady_clock::now();
  }
  logger_.log(LogLevel::error, "lost the connection to the NATS servers of JetStream bucket " + bucket_ +
                                   ": what reads or writes the bucket fails (unavailable) until a server answers "
                                   "again; reconnecting (is nats-server running and reachable?)");
}

void Kv::connection_back() {
  {
    std::lock_guard<std::mutex> lock(refused_mu_);
    if (!lost_) return;
    lost_ = false;
  }
  logger_.log(LogLevel::info, "connected to the NATS servers of JetStream bucket " + bucket_ + " again");
}

Result<std::optional<Kv::Entry>> Kv::get(const std::string& key) {
  kvEntry* e = nullptr;
  natsStatus s = kvStore_Get(&e, kv_, key.c_str());
  if (s == NATS_NOT_FOUND) return std::optional<Entry>();
  if (s != NATS_OK) return failure(read_code(s), "reading " + key + " from JetStream bucket " + bucket_, s);
  Entry out;
  out.value.assign(static_cast<const char*>(kvEntry_Value(e)), static_cast<std::size_t>(kvEntry_ValueLen(e)));
  out.revision = kvEntry_Revision(e);
  kvEntry_Destroy(e);
  return std::optional<Entry>(std::move(out));
}

// A compare-and-set write: `value` under `key` if the key's last record is
// at `revision` (0: the key has none). A refusal is told by the code in the
// server's answer (10071, wrong last sequence), never by the thread's last
// error text, which nats.c can leave over from an earlier call.
Result<std::optional<uint64_t>> Kv::put(const std::string& key, std::string_view value, uint64_t revision,
                                        const char* doing) {
  jsPubOptions po;
  jsPubOptions_Init(&po);
  if (revision == 0) {
    po.ExpectNoMessage = true;
  } else {
    po.ExpectLastSubjectSeq = revision;
  }
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const std::string subject = subject_prefix_ + key;
  natsStatus s = js_Publish(&ack, js_, subject.c_str(), value.data(), static_cast<int>(value.size()), &po, &jerr);
  if (s == NATS_OK) {
    const uint64_t rev = ack->Sequence;
    jsPubAck_Destroy(ack);
    return std::optional<uint64_t>(rev);
  }
  if (jerr == JSStreamWrongLastSequenceErr) return std::optional<uint64_t>();
  return failure(code_for(s), std::string(doing) + " " + key + " in JetStream bucket " + bucket_, s);
}

Result<std::optional<uint64_t>> Kv::create(const std::string& key, std::string_view value) {
  auto put_result = put(key, value, 0, "creating");
  if (!put_result.ok() || *put_result) return put_result;
  return create_over_marker(key, value);
}

// A deleted or purged key keeps a marker as its last record, which the
// create's "no record yet" refuses: over a marker, the write expects the
// marker's revision. Three rounds: a key can be deleted or purged again
// between the read and the write, but not for ever.
Result<std::optional<uint64_t>> Kv::create_over_marker(const std::string& key, std::string_view value) {
  const std::string subject = subject_prefix_ + key;
  for (int round = 0; round < 3; ++round) {
    natsMsg* last = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    uint64_t over = 0;
    natsStatus s = js_GetLastMsg(&last, js_, stream_.c_str(), subject.c_str(), nullptr, &jerr);
    if (s != NATS_OK && s != NATS_NOT_FOUND) {
      return failure(code_for(s), "reading " + key + " from JetStream bucket " + bucket_, s);
    }
    if (s == NATS_OK) {  // else purged from the stream since: no record at all
      const char* op = nullptr;
      const bool marker = natsMsgHeader_Get(last, "KV-Operation", &op) == NATS_OK && op != nullptr &&
                          (std::strcmp(op, "DEL") == 0 || std::strcmp(op, "PURGE") == 0);
      over = natsMsg_GetSequence(last);
      natsMsg_Destroy(last);
      if (!marker) return std::optional<uint64_t>();  // a value: taken
    }
    auto put_result = put(key, value, over, "creating");
    if (!put_result.ok() || *put_result) return put_result;
  }
  return std::optional<uint64_t>();
}

Result<std::optional<uint64_t>> Kv::update(const std::string& key, std::string_view value, uint64_t revision) {
  return put(key, value, revision, "updating");
}

// What a write of write_all() was doing, for its errors.
std::string Kv::writing(const std::string& key, uint64_t revision, bool remove) const {
  if (remove) return "removing " + key + " from JetStream bucket " + bucket_;
  return std::string(revision == 0 ? "creating " : "updating ") + key + " in JetStream bucket " + bucket_;
}

Result<std::optional<uint64_t>> Kv::refusal_or_error(const std::string& key, uint64_t revision, bool remove,
                                                     int status, int code, const char* text) const {
  if (code == JSStreamWrongLastSequenceErr) return std::optional<uint64_t>();
  const auto st = static_cast<natsStatus>(status);
  return Error(code_for(st), writing(key, revision, remove) + ": " +
                                 (text != nullptr && *text != '\0' ? text : natsStatus_GetText(st)));
}

// Runs on a nats.c thread, for every acknowledgement of write_all()'s
// messages (which it owns from here): files the outcome under the write
// the message carried, unless its round gave up on it.
void Kv::on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  auto* kv = static_cast<Kv*>(closure);
  {
    std::lock_guard<std::mutex> lock(kv->acks_mu_);
    auto it = kv->awaited_.find(msg);
    if (it != kv->awaited_.end()) {
      const Write& w = (*kv->round_)[it->second];
      auto& answer = (*kv->answers_)[it->second];
      if (pa != nullptr) {
        answer = std::optional<uint64_t>(pa->Sequence);
      } else if (pae != nullptr) {
        answer = kv->refusal_or_error(w.key, w.revision, w.remove, pae->Err, pae->ErrCode, pae->ErrText);
      } else {
        answer = Error(Code::internal, "writing " + w.key + " in JetStream bucket " + kv->bucket_ +
                                           ": an acknowledgement with neither an answer nor an error");
      }
      kv->awaited_.erase(it);
      if (kv->awaited_.empty()) kv->acks_cv_.notify_all();
    }
  }
  natsMsg_Destroy(msg);
}

std::vector<Result<std::optional<uint64_t>>> Kv::write_all(std::vector<Write> writes) {
  std::vector<Result<std::optional<uint64_t>>> answers(
      writes.size(), Error(Code::internal, "a write of a round was never sent"));
  // One write alone goes the synchronous way, which nats.c flushes at once
  // (an asynchronous round is flushed below, which costs a PING of its own).
  if (writes.size() == 1) {
    const Write& w = writes.front();
    if (w.remove) {
      Result<uint64_t> removed = write_marker(w.key);
      answers.front() = removed.ok() ? Result<std::optional<uint64_t>>(std::optional<uint64_t>(*removed))
                                     : Result<std::optional<uint64_t>>(removed.error());
    } else {
      answers.front() = w.revision == 0 ? create(w.key, w.value) : update(w.key, w.value, w.revision);
    }
    return answers;
  }
  std::lock_guard<std::mutex> round(round_mu_);
  for (std::size_t from = 0; from < writes.size(); from += kMaxInFlight) {
    const std::size_t to = std::min(writes.size(), from + static_cast<std::size_t>(kMaxInFlight));
    {
      std::lock_guard<std::mutex> lock(acks_mu_);
      round_ = &writes;
      answers_ = &answers;
    }
    for (std::size_t i = from; i < to; ++i) {
      const Write& w = writes[i];
      const std::string subject = subject_prefix_ + w.key;
      natsMsg* msg = nullptr;
      natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, w.value.data(), static_cast<int>(w.value.size()));
      if (s != NATS_OK) {
        answers[i] = failure(code_for(s), writing(w.key, w.revision, w.remove), s);
        continue;
      }
      jsPubOptions po;
      jsPubOptions_Init(&po);
      if (w.remove) {
        s = natsMsgHeader_Set(msg, "KV-Operation", "DEL");  // what kvStore_Delete writes
        if (s != NATS_OK) {
          natsMsg_Destroy(msg);
          answers[i] = failure(code_for(s), writing(w.key, 0, true), s);
          continue;
        }
      } else if (w.revision == 0) {
        po.ExpectNoMessage = true;
      } else {
        po.ExpectLastSubjectSeq = w.revision;
      }
      // Filed before it is sent: its acknowledgement can come at once.
      natsMsg* sent = msg;
      {
        std::lock_guard<std::mutex> lock(acks_mu_);
        awaited_.emplace(sent, i);
      }
      s = js_PublishMsgAsync(js_async_, &msg, &po);
      if (s != NATS_OK) {
        std::lock_guard<std::mutex> lock(acks_mu_);
        awaited_.erase(sent);
        answers[i] = failure(code_for(s), writing(w.key, w.revision, w.remove), s);
      }
      natsMsg_Destroy(msg);  // null once nats.c took it
    }
    // nats.c's flusher thread waits a millisecond for more before it
    // sends what asynchronous publishes buffered; a round is complete
    // here, so it goes now. The flush sends a PING and waits for its PONG,
    // which only says the server read the writes: a short wait, the
    // answers are awaited below (a lost connection fails the flush at
    // once; the writes then time out there as before).
    (void)natsConnection_FlushTimeout(nc_, std::min<int64_t>(timeout_ms_, 100));
    std::unique_lock<std::mutex> lock(acks_mu_);
    if (!acks_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms_), [this] { return awaited_.empty(); })) {
      // Unanswered within the timeout (the servers away, a leader moving):
      // unavailable, as a synchronous write's would be. Such a write may
      // still land; nats.c forgets it, so a late answer finds nothing here.
      for (const auto& [msg, i] : awaited_) {
        answers[i] = noted(Error(Code::unavailable, writing(writes[i].key, writes[i].revision, writes[i].remove) +
                                                        ": no answer from the servers within " +
                                                        std::to_string(timeout_ms_) + " ms"));
      }
      awaited_.clear();
      lock.unlock();
      natsMsgList pending{nullptr, 0};
      if (js_PublishAsyncGetPendingList(&pending, js_async_) == NATS_OK) natsMsgList_Destroy(&pending);
      lock.lock();
    }
    round_ = nullptr;
    answers_ = nullptr;
  }
  // A create refused by a delete marker writes over the marker, as
  // create(); a marker written is deleted later, as remove()'s.
  for (std::size_t i = 0; i < writes.size(); ++i) {
    if (!writes[i].remove && writes[i].revision == 0 && answers[i].ok() && !*answers[i]) {
      answers[i] = create_over_marker(writes[i].key, writes[i].value);
    }
    if (writes[i].remove && answers[i].ok() && *answers[i]) sweep_later(**answers[i]);
  }
  return answers;
}

// A delete marker, never a purge: on the bucket (history 1) the marker
// replaces the value just as a purge's would, but a purge is a rollup, and
// nats-server before 2.9.15 (Debian bookworm's is 2.9.10) then moves every
// consumer of the stream, every watcher included, past whatever it had not
// delivered yet (nats-io/nats-server#3838): other processes' indexes missed
// calls and messages written a moment before.
Result<void> Kv::remove(const std::string& key) {
  Result<uint64_t> marker = write_marker(key);
  if (!marker.ok()) return std::move(marker).error();
  return {};
}

Result<uint64_t> Kv::write_marker(const std::string& key) {
  const std::string subject = subject_prefix_ + key;
  natsMsg* msg = nullptr;
  natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, nullptr, 0);
  if (s == NATS_OK) s = natsMsgHeader_Set(msg, "KV-Operation", "DEL");  // what kvStore_Delete writes
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (s == NATS_OK) s = js_PublishMsg(&ack, js_, msg, nullptr, &jerr);
  natsMsg_Destroy(msg);
  if (s != NATS_OK) return failure(code_for(s), "removing " + key + " from JetStream bucket " + bucket_, s);
  const uint64_t revision = ack->Sequence;
  jsPubAck_Destroy(ack);
  sweep_later(revision);
  return revision;
}

void Kv::sweep_later(uint64_t revision) {
  if (sweeper_ != nullptr) sweeper_->add(revision);
}

Result<bool> Kv::delete_marker(uint64_t revision) {
  const std::string where = "the delete marker at " + std::to_string(revision) + " of JetStream bucket " + bucket_;
  // Read from the stream's leader first (the JetStream API, not a direct
  // get): only a marker is deleted, whatever the revision came from.
  natsMsg* msg = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetMsg(&msg, js_, stream_.c_str(), revision, nullptr, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) return false;  // written over, or deleted already
  if (s != NATS_OK) return failure(code_for(s), "reading " + where, s);
  const char* op = nullptr;
  const bool marker = natsMsgHeader_Get(msg, "KV-Operation", &op) == NATS_OK && op != nullptr &&
                      (std::strcmp(op, "DEL") == 0 || std::strcmp(op, "PURGE") == 0);
  natsMsg_Destroy(msg);
  if (!marker) return false;
  jerr = static_cast<jsErrCode>(0);
  s = js_DeleteMsg(js_, stream_.c_str(), revision, nullptr, &jerr);
  if (s == NATS_OK) return true;
  // Gone meanwhile (written over, history 1, or deleted by another
  // process), or refused (a bucket made to deny deletes since): left.
  if (jerr == JSSequenceNotFoundErr || jerr == JSStreamMsgDeleteFailed) return false;
  return failure(code_for(s), "deleting " + where, s);
}

void Kv::refused(std::string text) {
  const auto now = std::chrono::steady_clock::now();
  bool log = false;
  {
    std::lock_guard<std::mutex> lock(refused_mu_);
    refused_ = text;
    refused_at_ = now;
    auto [at, fresh] = refusal_logged_.try_emplace(text, now);
    if (fresh || now - at->second >= std::chrono::minutes(1)) {
      at->second = now;
      log = true;
    }
    if (refusal_logged_.size() > 64) refusal_logged_.clear();  // a bound; at worst logged again
  }
  if (log) {
    logger_.log(LogLevel::error, "NATS refused JetStream bucket " + bucket_ + "'s connection: " + text +
                                     " (the NATS user needs that permission; until it has it, what needs it fails "
                                     "with a timeout)");
  }
}

Error Kv::failure(Code code, const std::string& what, int status) const {
  return noted(nats_error(code, what, static_cast<natsStatus>(status)));
}

Error Kv::noted(Error e) const {
  if (e.code() != Code::unavailable) return e;
  std::lock_guard<std::mutex> lock(refused_mu_);
  if (lost_) {
    const auto away = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - lost_at_);
    return Error(e.code(),
                 e.message() + " (the connection to the NATS servers was lost " + std::to_string(away.count()) +
                     " s ago; reconnecting; a write sent meanwhile may still be applied once it is back, so "
                     "retry a dispatch with the same idempotency key)",
                 e.details());
  }
  const auto within = std::chrono::milliseconds(timeout_ms_) + std::chrono::seconds(1);
  if (refused_.empty() || std::chrono::steady_clock::now() - refused_at_ > within) return e;
  return Error(e.code(), e.message() + " (the servers just refused this connection: " + refused_ + ")", e.details());
}

uint64_t Kv::markers_swept() const { return sweeper_ != nullptr ? sweeper_->swept() : 0; }

Result<void> Kv::Follower::start(Kv& kv, std::function<void()> loop) {
  auto w = kv.watch_all();
  if (!w.ok()) return std::move(w).error();
  watch_ = std::move(w).value();
  running_ = true;
  thread_ = std::thread(std::move(loop));
  return {};
}

Result<void> Kv::Follower::start_and_list(Kv& kv, std::function<void()> loop, std::mutex& mu,
                                          std::condition_variable& cv, const std::function<bool()>& listed,
                                          std::chrono::milliseconds timeout) {
  Result<void> started = start(kv, std::move(loop));
  if (!started.ok()) return started;
  std::unique_lock<std::mutex> lock(mu);
  if (!cv.wait_for(lock, timeout, listed)) {
    return Error(Code::unavailable, "JetStream bucket " + kv.bucket() + " did not list its records within " +
                                        std::to_string(timeout.count()) + " ms");
  }
  return {};
}

void Kv::Follower::stop() {
  running_ = false;
  if (watch_) watch_->stop();
  if (thread_.joinable()) thread_.join();
  watch_.reset();
}

Result<std::unique_ptr<Kv::Watch>> Kv::watch_all() {
  kvWatcher* w = nullptr;
  natsStatus s = kvStore_WatchAll(&w, kv_, nullptr);
  if (s != NATS_OK) return failure(code_for(s), "watching JetStream bucket " + bucket_, s);
  return std::make_unique<Watch>(w, *this);
}

Kv::Watch::~Watch() {
  kvWatcher_Stop(w_);
  kvWatcher_Destroy(w_);
}

bool Kv::Watch::next_change(Change& out, const std::atomic<bool>& running,
                            const std::function<void()>& on_caught_up) {
  while (running) {
    switch (next(out, kSliceMs)) {
      case Next::timeout:
        continue;
      case Next::failed:
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      case Next::stopped:
        return false;
      case Next::caught_up:
        on_caught_up();
        continue;
      case Next::change:
        return true;
    }
  }
  return false;
}

Kv::Watch::Next Kv::Watch::next(Change& out, int64_t timeout_ms) {
  if (stopped_) return Next::stopped;
  kvEntry* e = nullptr;
  natsStatus s = kvWatcher_Next(&e, w_, timeout_ms);
  if (s == NATS_TIMEOUT) return Next::timeout;
  if (s == NATS_ILLEGAL_STATE) return Next::stopped;
  if (s != NATS_OK) return Next::failed;
  if (e == nullptr) {
    listed_ = true;
    return Next::caught_up;
  }
  out.key = kvEntry_Key(e);
  out.revision = kvEntry_Revision(e);
  const kvOperation op = kvEntry_Operation(e);
  out.deleted = op == kvOp_Delete || op == kvOp_Purge;
  if (out.deleted) {
    out.value.clear();
    // A marker present at the start: whoever wrote it may be gone.
    if (!listed_) kv_.sweep_later(out.revision);
  } else {
    out.value.assign(static_cast<const char*>(kvEntry_Value(e)), static_cast<std::size_t>(kvEntry_ValueLen(e)));
  }
  kvEntry_Destroy(e);
  return Next::change;
}

}  // namespace dispatch::scheduler::jetstream
