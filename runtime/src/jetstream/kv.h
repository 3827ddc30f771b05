// A JetStream key-value bucket as the JetStream store uses it: a connection
// bound to one bucket, reads, compare-and-set writes that tell a lost race
// from a failure, removals, and a watcher over every key. Errors come back as
// dispatch::Error with NATS's own text (unavailable when the servers cannot
// be reached).
//
// Not for: what the keys and values mean (jetstream_store.cc), nor other
// JetStream features (streams, consumers).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "dispatch/core/logger.h"
#include "dispatch/core/result.h"
#include "dispatch/jetstream/jetstream_store.h"

struct __natsConnection;
struct __jsCtx;
struct __kvStore;
struct __kvWatcher;
struct __natsMsg;
struct jsPubAck;
struct jsPubAckErr;

namespace dispatch::scheduler::jetstream {

// The code a nats.c status (natsStatus) becomes: unavailable for what ends
// when the servers are back (no server, a connection closed, broken or not
// yet made, a timeout, no responders), out_of_range for a record larger
// than the servers' max_payload (it never fits), internal for the rest.
Code code_for_nats_status(int status);

class Kv {
 public:
  // Connects and binds to options.bucket, creating it when missing.
  static Result<std::unique_ptr<Kv>> open(const JetStreamOptions& options);
  ~Kv();
  Kv(const Kv&) = delete;
  Kv& operator=(const Kv&) = delete;

  struct Entry {
    std::string value;
    uint64_t revision = 0;
  };
  // nullopt: no such key (or deleted).
  Result<std::optional<Entry>> get(const std::string& key);
  // Writes `value` where the key is absent; nullopt (nothing written) when
  // it is there. The new revision otherwise.
  Result<std::optional<uint64_t>> create(const std::string& key, std::string_view value);
  // Writes `value` if the key is still at `revision`; nullopt (nothing
  // written) when someone wrote it since.
  Result<std::optional<uint64_t>> update(const std::string& key, std::string_view value, uint64_t revision);
  // Many compare-and-set writes at once: each is create() (revision 0) or
  // update() (at `revision`), and they are all in flight together (one
  // round trip for the lot, not one each), so they must not depend on one
  // another. Each write's own outcome comes back in its place, as create()
  // or update() would answer it: the new revision, nullopt for a lost race
  // (the server's code 10071), or an error (unavailable for a write the
  // server did not answer within the timeout: it may have been written).
  // A write may also be a removal (a delete marker, as remove(), with no
  // condition), answered with the marker's revision. Rounds from several
  // threads take turns.
  struct Write {
    std::string key;
    std::string value;
    uint64_t revision = 0;  // 0: create
    bool remove = false;    // a delete marker; value and revision unused
  };
  std::vector<Result<std::optional<uint64_t>>> write_all(std::vector<Write> writes);
  // Removes the key (a delete marker, which reads as absent and which
  // create() writes over). The marker itself is deleted from the stream
  // after JetStreamOptions::marker_grace, as are markers the watcher
  // finds listing the bucket (on a bucket that allows deleting messages).
  Result<void> remove(const std::string& key);
  // Markers deleted from the stream so far.
  uint64_t markers_swept() const;

  // The servers refused this connection something (a permission: the
  // server's text names the subject): logged (error, once a minute per
  // text) and remembered, because a request refused so is never answered
  // and its failure would otherwise read as the servers being away. Called
  // by nats.c's error callback.
  void refused(std::string text);
  // nats.c's closed callback: no callback comes after it.
  void closed();
  // nats.c's disconnected and reconnected callbacks: said in the log
  // (error, then info), once each, and until the connection is back every
  // unavailable failure says it was lost (noted()). Not at close.
  void connection_lost();
  void connection_back();
  // Deletes the message at `revision` if it is a delete marker (read from
  // the stream's leader first); false when it is not one, or is gone.
  Result<bool> delete_marker(uint64_t revision);

  struct Change {
    std::string key;
    std::string value;
    uint64_t revision = 0;
    bool deleted = false;  // a delete or purge marker
  };
  // Every key's latest value, then every change as it happens, in order.
  class Watch {
   public:
    // `kv` is told the markers found listing the bucket.
    Watch(__kvWatcher* w, Kv& kv) : w_(w), kv_(kv) {}
    ~Watch();
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    // `caught_up` once, after the latest values present at the start;
    // `failed`: the servers are away for now (the watcher carries on once
    // they are back); `stopped`: stop() was called.
    enum class Next { change, caught_up, timeout, failed, stopped };
    Next next(Change& out, int64_t timeout_ms);
    // The next change, for a loop that follows the bucket while `running`:
    // timeouts are waited through, failures tried again after 100 ms (the
    // servers away), `on_caught_up` runs when caught up; false once stopped
    // or no longer running. Waits in slices of kSliceMs, so a stop() or a
    // cleared `running` ends it within that.
    bool next_change(Change& out, const std::atomic<bool>& running, const std::function<void()>& on_caught_up);
    // Ends a next_change() in progress (within kSliceMs) and makes next()
    // answer `stopped`; thread-safe. It never stops the nats.c watcher
    // under a thread waiting in it: nats.c 3.4 (Debian bookworm's) then
    // drops the update it was handing over without freeing it (fixed
    // upstream in nats-io/nats.c 1a99478a). The destructor stops it, after
    // the thread that followed it has ended.
    void stop() { stopped_ = true; }
    static constexpr int64_t kSliceMs = 50;

   private:
    __kvWatcher* w_;
    Kv& kv_;
    bool listed_ = false;  // caught up once
    std::atomic<bool> stopped_{false};
  };
  Result<std::unique_ptr<Watch>> watch_all();
  // A watcher over the whole bucket and the thread that follows it (a
  // store's index). start() after stop() follows anew, from a new consumer.
  class Follower {
   public:
    Follower() = default;
    Follower(const Follower&) = delete;
    Follower& operator=(const Follower&) = delete;
    ~Follower() { stop(); }
    // A new watcher, and `loop` on a thread of its own, which reads the
    // watcher through next_change().
    Result<void> start(Kv& kv, std::function<void()> loop);
    // start(), then waits on `cv` under `mu` until `listed()` holds (the
    // loop has had every record present from the watcher); unavailable,
    // naming the bucket, after `timeout`.
    Result<void> start_and_list(Kv& kv, std::function<void()> loop, std::mutex& mu, std::condition_variable& cv,
                                const std::function<bool()>& listed, std::chrono::milliseconds timeout);
    // Watch::next_change() while following.
    bool next_change(Change& out, const std::function<void()>& on_caught_up) {
      return watch_->next_change(out, running_, on_caught_up);
    }
    // Ends the thread (within Watch::kSliceMs) and drops the watcher.
    void stop();
    // Whether a watcher is being followed (start() made one).
    bool started() const { return watch_ != nullptr; }

   private:
    std::unique_ptr<Watch> watch_;
    std::atomic<bool> running_{true};
    std::thread thread_;
  };

  const std::string& bucket() const { return bucket_; }

 private:
  Kv() = default;
  Result<std::optional<uint64_t>> put(const std::string& key, std::string_view value, uint64_t revision,
                                      const char* doing);
  // The rest of create() after its first write was refused: over a delete
  // marker the write expects the marker's revision.
  Result<std::optional<uint64_t>> create_over_marker(const std::string& key, std::string_view value);
  // A delete marker on `key`; its revision, handed to the sweeper.
  Result<uint64_t> write_marker(const std::string& key);
  void sweep_later(uint64_t revision);
  class Sweeper;
  std::string writing(const std::string& key, uint64_t revision, bool remove = false) const;
  Result<std::optional<uint64_t>> refusal_or_error(const std::string& key, uint64_t revision, bool remove,
                                                   int status, int code, const char* text) const;
  static void on_ack(__jsCtx* js, __natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure);
  // `e` with the servers' latest refusal, when there was one within the
  // timeout before, appended to its message (code kept): what a timed-out
  // request was most likely refused.
  Error noted(Error e) const;
  // nats_error() (NATS's text for `status`), noted().
  Error failure(Code code, const std::string& what, int status) const;

  Logger logger_;
  mutable std::mutex refused_mu_;
  std::string refused_;                                     // the latest refusal
  std::chrono::steady_clock::time_point refused_at_;        // when it came
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> refusal_logged_;  // text -> when
  std::condition_variable closed_cv_;
  bool closed_ = false;  // guarded by refused_mu_
  bool closing_ = false;  // guarded by refused_mu_: the destructor closes the connection
  bool lost_ = false;     // guarded by refused_mu_: disconnected, not reconnected yet
  std::chrono::steady_clock::time_point lost_at_;

  __natsConnection* nc_ = nullptr;
  __jsCtx* js_ = nullptr;
  // write_all()'s: its own context, whose acknowledgements come to on_ack
  // (a nats.c thread), which files each under the write it answers.
  __jsCtx* js_async_ = nullptr;
  std::mutex round_mu_;  // one write_all() round at a time
  std::mutex acks_mu_;
  std::condition_variable acks_cv_;
  std::unordered_map<__natsMsg*, std::size_t> awaited_;  // message in flight -> its write's place
  std::vector<Result<std::optional<uint64_t>>>* answers_ = nullptr;
  const std::vector<Write>* round_ = nullptr;
  int64_t timeout_ms_ = 0;
  __kvStore* kv_ = nullptr;
  std::string bucket_;
  std::string stream_;          // KV_<bucket>
  std::string subject_prefix_;  // $KV.<bucket>.
  std::unique_ptr<Sweeper> sweeper_;  // null: the bucket denies deletes, or marker_grace is 0
};

}  // namespace dispatch::scheduler::jetstream
