// Kv, the store's one way to a bucket: opens racing to create one bucket
// all get it; compare-and-set writes tell a lost race (nullopt) from a
// failure (an error) by the server's answer, whatever the thread did
// before; a removed (deleted or purged) key can be created again.
#include "jetstream/kv.h"

#include <gtest/gtest.h>

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "jetstream/testing/nats_server.h"

namespace dispatch::scheduler::jetstream {
namespace {

using testing::NatsServer;

// A request whose connection broke under it (the server SIGKILLed: nats.c
// reports a socket error, "send error: 104") is unavailable, as when the
// servers cannot be reached at all, so callers retry it; seen as internal
// in the R5 test that kills three nodes of five. A record too large for
// the servers is out_of_range. What is not about the servers being away
// stays internal.
TEST(KvCodes, ABrokenOrMissingConnectionIsUnavailableARecordTooLargeOutOfRangeTheRestInternal) {
  for (natsStatus s : {NATS_IO_ERROR, NATS_NOT_YET_CONNECTED, NATS_NO_SERVER, NATS_CONNECTION_CLOSED,
                       NATS_CONNECTION_DISCONNECTED, NATS_TIMEOUT, NATS_STALE_CONNECTION, NATS_NO_RESPONDERS}) {
    EXPECT_EQ(code_for_nats_status(s), Code::unavailable) << natsStatus_GetText(s);
  }
  for (natsStatus s : {NATS_ERR, NATS_PROTOCOL_ERROR, NATS_INVALID_ARG, NATS_NOT_PERMITTED,
                       NATS_CONNECTION_AUTH_FAILED}) {
    EXPECT_EQ(code_for_nats_status(s), Code::internal) << natsStatus_GetText(s);
  }
  // A record past the servers' max_payload never fits, however often it
  // is tried.
  EXPECT_EQ(code_for_nats_status(NATS_MAX_PAYLOAD), Code::out_of_range);
}

class KvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!NatsServer::available()) GTEST_SKIP() << NatsServer::kMissing;
    ASSERT_TRUE(nats_.start()) << nats_.failure();
    JetStreamOptions o;
    o.servers = {nats_.url()};
    o.bucket = "kv";
    o.timeout = std::chrono::milliseconds(1000);
    auto kv = Kv::open(o);
    ASSERT_TRUE(kv.ok()) << kv.error().what();
    kv_ = std::move(kv).value();
  }
  NatsServer nats_;
  std::unique_ptr<Kv> kv_;
};

// dispatchd processes started together on a bucket that does not exist yet
// all create it; whichever the server takes first, the others open it.
TEST_F(KvTest, OpensRacingToCreateOneBucketAllSucceed) {
  for (int round = 0; round < 20; ++round) {
    JetStreamOptions o;
    o.servers = {nats_.url()};
    o.bucket = "race" + std::to_string(round);
    o.timeout = std::chrono::milliseconds(2000);
    constexpr int kOpeners = 8;
    std::vector<std::string> errors(kOpeners);
    std::vector<std::thread> openers;
    std::atomic<int> ready{0};
    for (int i = 0; i < kOpeners; ++i) {
      openers.emplace_back([&, i] {
        ready.fetch_add(1);
        while (ready.load() < kOpeners) std::this_thread::yield();
        auto kv = Kv::open(o);
        if (!kv.ok()) errors[i] = kv.error().what();
      });
    }
    for (auto& t : openers) t.join();
    for (int i = 0; i < kOpeners; ++i) EXPECT_EQ(errors[i], "") << "round " << round << ", opener " << i;
  }
}

// The servers going away and coming back are said in the log, once each,
// and a write failing meanwhile says the connection is lost: an operator
// saw no line at all while every dispatch timed out.
TEST_F(KvTest, ALostConnectionIsLoggedAndNamedInFailuresUntilItIsBack) {
  std::mutex mu;
  std::vector<std::string> lines;
  JetStreamOptions o;
  o.servers = {nats_.url()};
  o.bucket = "kv";
  o.timeout = std::chrono::milliseconds(500);
  o.logger = Logger(LogLevel::info, [&](LogLevel, std::string_view line) {
    std::lock_guard<std::mutex> lock(mu);
    lines.emplace_back(line);
  });
  auto opened = Kv::open(o);
  ASSERT_TRUE(opened.ok()) << opened.error().what();
  std::unique_ptr<Kv> kv = std::move(opened).value();
  const auto count = [&](const std::string& text) {
    std::lock_guard<std::mutex> lock(mu);
    return std::count_if(lines.begin(), lines.end(),
                         [&](const std::string& l) { return l.find(text) != std::string::npos; });
  };
  const auto wait_for = [&](const std::string& text) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (count(text) == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return count(text);
  };
  const std::string lost = "lost the connection to the NATS servers of JetStream bucket kv";
  const std::string back = "connected to the NATS servers of JetStream bucket kv again";

  nats_.stop();
  EXPECT_EQ(wait_for(lost), 1);
  auto failed = kv->create("k", "v");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), Code::unavailable) << failed.error().what();
  EXPECT_NE(failed.error().message().find("the connection to the NATS servers was lost"), std::string::npos)
      << failed.error().what();
  EXPECT_NE(failed.error().message().find("retry a dispatch with the same idempotency key"), std::string::npos)
      << failed.error().what();

  ASSERT_TRUE(nats_.start()) << nats_.failure();
  EXPECT_EQ(wait_for(back), 1);
  EXPECT_EQ(count(lost), 1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  Result<std::optional<uint64_t>> written = kv->create("k2", "v");
  while (!written.ok() && std::chrono::steady_clock::now() < deadline) written = kv->create("k2", "v");
  ASSERT_TRUE(written.ok()) << written.error().what();
  // Closing is not a loss.
  kv.reset();
  EXPECT_EQ(count(lost), 1);
}

// A user whose account has no JetStream, on a server that has it: the
// hint names the account too; it sent the operator to start nats-server
// with -js, which it already was.
TEST(KvAccounts, AnAccountWithoutJetStreamIsNamedInTheHint) {
  if (!NatsServer::available()) GTEST_SKIP() << NatsServer::kMissing;
  const std::string dir = testing::fresh_temp_dir("dispatch-nats-accounts");
  ASSERT_FALSE(dir.empty());
  const int port = testing::free_loopback_port();
  ASSERT_NE(port, 0);
  const std::string config = dir + "/nats.conf";
  {
    std::ofstream out(config);
    out << "listen: 127.0.0.1:" << port << "\n"
        << "jetstream { store_dir: \"" << dir << "/js\" }\n"
        << "accounts {\n"
        << "  JS: { jetstream: enabled, users: [ { user: js, password: js } ] }\n"
        << "  PLAIN: { users: [ { user: plain, password: plain } ] }\n"
        << "}\n";
  }
  NatsServer nats;
  nats.set_config(dir, config, port);
  ASSERT_TRUE(nats.start()) << nats.failure();
  JetStreamOptions o;
  o.servers = {nats.url()};
  o.bucket = "kv";
  o.timeout = std::chrono::milliseconds(1000);
  o.user = "plain";
  o.password = "plain";
  auto refused = Kv::open(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("and for the account of the NATS user given?"), std::string::npos)
      << refused.error().what();
  o.user = "js";
  o.password = "js";
  {
    auto opened = Kv::open(o);
    EXPECT_TRUE(opened.ok()) << opened.error().what();
  }
  nats.stop();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST_F(KvTest, CreateWritesOnceAndUpdateNeedsTheLatestRevision) {
  auto first = kv_->create("k", "one");
  ASSERT_TRUE(first.ok()) << first.error().what();
  ASSERT_TRUE(first->has_value());
  auto again = kv_->create("k", "two");
  ASSERT_TRUE(again.ok()) << again.error().what();
  EXPECT_FALSE(again->has_value()) << "a second create of one key was written";

  auto updated = kv_->update("k", "three", **first);
  ASSERT_TRUE(updated.ok()) << updated.error().what();
  ASSERT_TRUE(updated->has_value());
  EXPECT_GT(**updated, **first);
  auto stale = kv_->update("k", "four", **first);
  ASSERT_TRUE(stale.ok()) << stale.error().what();
  EXPECT_FALSE(stale->has_value()) << "an update at an old revision was written";
  EXPECT_EQ(kv_->get("k").value()->value, "three");
}

TEST_F(KvTest, ARemovedKeyCanBeCreatedAgain) {
  ASSERT_TRUE(kv_->create("k", "one").value().has_value());
  ASSERT_TRUE(kv_->remove("k").ok());
  EXPECT_FALSE(kv_->get("k").value().has_value());
  auto again = kv_->create("k", "two");
  ASSERT_TRUE(again.ok()) << again.error().what();
  ASSERT_TRUE(again->has_value()) << "the delete marker was taken for a value";
  EXPECT_EQ(kv_->get("k").value()->value, "two");
  // And a create over the new value is refused again.
  EXPECT_FALSE(kv_->create("k", "three").value().has_value());
}

// nats.c keeps a thread's last error text across calls, and a request to
// servers that are away can fail without setting one: the lost race's
// "wrong last sequence" must not be read as this failure's cause (it made
// dispatchd answer "call ID is taken", internal, while NATS was away).
TEST_F(KvTest, AFailureAfterALostRaceOnTheSameThreadIsAFailure) {
  ASSERT_TRUE(kv_->create("k", "one").value().has_value());
  ASSERT_FALSE(kv_->create("k", "two").value().has_value());
  auto rev = kv_->get("k").value()->revision;
  ASSERT_FALSE(kv_->update("k", "x", rev + 7).value().has_value());
  nats_.stop();
  auto created = kv_->create("other", "v");
  ASSERT_FALSE(created.ok()) << "a create answered " << (created->has_value() ? "written" : "taken")
                             << " with the server away";
  EXPECT_EQ(created.error().code(), Code::unavailable) << created.error().what();
  auto updated = kv_->update("k", "y", rev);
  ASSERT_FALSE(updated.ok()) << "an update answered " << (updated->has_value() ? "written" : "lost race")
                             << " with the server away";
  EXPECT_EQ(updated.error().code(), Code::unavailable) << updated.error().what();
}

// write_all() sends its writes together, and each gets its own answer as
// create() or update() would give it: written (its revision), a lost race
// (nullopt, the server's 10071), or, with the server away, unavailable.
TEST_F(KvTest, WriteAllAnswersEachWriteInItsPlace) {
  auto held = kv_->create("held", "v").value();
  ASSERT_TRUE(held.has_value());
  auto updated = kv_->create("upd", "v").value();
  ASSERT_TRUE(updated.has_value());
  ASSERT_TRUE(kv_->create("gone", "v").value().has_value());
  ASSERT_TRUE(kv_->remove("gone").ok());
  std::vector<Kv::Write> writes;
  writes.push_back({"new.1", "a", 0});           // created
  writes.push_back({"held", "b", 0});            // taken: refused
  writes.push_back({"upd", "c", *updated});      // the latest revision: written
  writes.push_back({"held", "d", *held + 100});  // a revision it never had: refused
  writes.push_back({"gone", "e", 0});            // over a delete marker: created
  writes.push_back({"new.2", "f", 0});           // created
  auto answers = kv_->write_all(writes);
  ASSERT_EQ(answers.size(), writes.size());
  for (std::size_t i = 0; i < answers.size(); ++i) {
    ASSERT_TRUE(answers[i].ok()) << i << ": " << answers[i].error().what();
  }
  EXPECT_TRUE(answers[0]->has_value());
  EXPECT_FALSE(answers[1]->has_value()) << "a create over a value was written";
  ASSERT_TRUE(answers[2]->has_value());
  EXPECT_GT(**answers[2], *updated);
  EXPECT_FALSE(answers[3]->has_value()) << "an update at a wrong revision was written";
  EXPECT_TRUE(answers[4]->has_value()) << "the delete marker was taken for a value";
  EXPECT_TRUE(answers[5]->has_value());
  EXPECT_EQ(kv_->get("upd").value()->value, "c");
  EXPECT_EQ(kv_->get("upd").value()->revision, **answers[2]);
  EXPECT_EQ(kv_->get("held").value()->value, "v");
  EXPECT_EQ(kv_->get("gone").value()->value, "e");

  // Many at once, two per key: exactly one of each pair is written.
  std::vector<Kv::Write> pairs;
  for (int i = 0; i < 1500; ++i) {
    pairs.push_back({"p." + std::to_string(i), "first", 0});
    pairs.push_back({"p." + std::to_string(i), "second", 0});
  }
  auto pair_answers = kv_->write_all(pairs);
  for (std::size_t i = 0; i < pair_answers.size(); i += 2) {
    ASSERT_TRUE(pair_answers[i].ok() && pair_answers[i + 1].ok()) << i;
    EXPECT_TRUE(pair_answers[i]->has_value()) << i;
    EXPECT_FALSE(pair_answers[i + 1]->has_value()) << i;
  }
  EXPECT_EQ(kv_->get("p.1499").value()->value, "first");

  // Removals go in a round too: a delete marker, with no condition (so a
  // key already absent is no refusal), beside other writes.
  auto mixed = kv_->write_all({{"p.1", {}, 0, true}, {"never.there", {}, 0, true}, {"new.3", "g", 0}});
  ASSERT_EQ(mixed.size(), 3u);
  for (const auto& a : mixed) ASSERT_TRUE(a.ok() && a->has_value()) << (a.ok() ? "refused" : a.error().what());
  EXPECT_FALSE(kv_->get("p.1").value().has_value());
  EXPECT_TRUE(kv_->create("p.1", "again").value().has_value()) << "a removed key cannot be created again";
  EXPECT_EQ(kv_->get("new.3").value()->value, "g");

  nats_.stop();
  auto away = kv_->write_all({{"x", "v", 0}, {"upd", "v", **answers[2]}, {"held", {}, 0, true}});
  ASSERT_EQ(away.size(), 3u);
  for (const auto& a : away) {
    ASSERT_FALSE(a.ok()) << "a write answered with the server away";
    EXPECT_EQ(a.error().code(), Code::unavailable) << a.error().what();
  }
  EXPECT_NE(away[2].error().message().find("removing held from JetStream bucket"), std::string::npos)
      << away[2].error().what();
}

// A watcher sees every write, whatever is removed around it. nats-server
// before 2.9.15 (Debian bookworm ships 2.9.10) moves every consumer past
// the messages not yet delivered to it when any subject is purged
// (nats-io/nats-server#3838), and a KV purge is one: a watcher then missed
// a write made just before another key's purge, and the stores' indexes
// lost a call or an inbox message. remove() must not purge.
TEST_F(KvTest, AWatcherSeesEveryWriteMadeJustBeforeAnotherKeyIsRemoved) {
  auto watch = kv_->watch_all();
  ASSERT_TRUE(watch.ok()) << watch.error().what();
  // Four writers, so that the server's delivery to the watcher lags the
  // writes now and then (the moment the bug needs).
  constexpr int kWriters = 4, kPerWriter = 400, kRounds = kWriters * kPerWriter;
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = w * kPerWriter; i < (w + 1) * kPerWriter; ++i) {
        auto kept = kv_->create("kept." + std::to_string(i), "v");
        auto gone = kv_->create("gone." + std::to_string(i), "v");
        auto removed = kv_->remove("gone." + std::to_string(i));
        if (!kept.ok() || !*kept || !gone.ok() || !*gone || !removed.ok()) ++failures;
      }
    });
  }
  for (std::thread& t : writers) t.join();
  ASSERT_EQ(failures.load(), 0);
  std::set<std::string> seen;
  int removed = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  Kv::Change change;
  while (std::chrono::steady_clock::now() < deadline &&
         (seen.size() < static_cast<std::size_t>(kRounds) || removed < kRounds)) {
    const auto next = (*watch)->next(change, 200);
    if (next != Kv::Watch::Next::change) continue;
    if (change.key.rfind("kept.", 0) == 0) seen.insert(change.key);
    if (change.key.rfind("gone.", 0) == 0 && change.deleted) ++removed;
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kRounds)) << "the watcher missed writes";
  EXPECT_EQ(removed, kRounds);
  // A removed key reads as absent.
  EXPECT_FALSE(kv_->get("gone.0").value().has_value());
}

// Stopping a watcher while writes arrive ends its follower promptly and
// loses nothing to the library: nats.c 3.4 leaks the update a waiting
// kvWatcher_Next was handed when the watcher is stopped under it (CI's
// LeakSanitizer caught one), so stop() must not stop it under a waiting
// thread. The leak shows under the sanitizers; the timing everywhere.
TEST_F(KvTest, AWatcherStoppedWhileWritesArriveEndsPromptly) {
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (int i = 0; writing; ++i) (void)kv_->create("w." + std::to_string(i), std::string(300, 'x'));
  });
  for (int round = 0; round < 20; ++round) {
    auto watch = kv_->watch_all();
    ASSERT_TRUE(watch.ok()) << watch.error().what();
    std::atomic<bool> running{true};
    std::atomic<int> changes{0};
    std::thread follower([&] {
      Kv::Change change;
      while ((*watch)->next_change(change, running, [] {})) ++changes;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + round % 7));
    const auto asked = std::chrono::steady_clock::now();
    (*watch)->stop();
    follower.join();
    const auto took = std::chrono::steady_clock::now() - asked;
    EXPECT_LT(took, std::chrono::seconds(2)) << "the follower did not end after stop()";
    Kv::Change change;
    EXPECT_EQ((*watch)->next(change, 10), Kv::Watch::Next::stopped);
  }
  writing = false;
  writer.join();
}

JetStreamOptions sweeping(const std::string& url, const std::string& bucket, int grace_ms) {
  JetStreamOptions o;
  o.servers = {url};
  o.bucket = bucket;
  o.timeout = std::chrono::milliseconds(2000);
  o.marker_grace = std::chrono::milliseconds(grace_ms);
  return o;
}

// A removal's delete marker would stay in the stream for ever (one per
// call, batch or entity message ever removed): each is deleted after the
// grace, whichever way it was written, and the keys read and are created
// as after any removal.
TEST_F(KvTest, DeleteMarkersLeaveTheStreamAfterTheGrace) {
  auto kv = Kv::open(sweeping(nats_.url(), "sweep", 300)).value();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(kv->create("k." + std::to_string(i), "v").value().has_value());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(kv->remove("k." + std::to_string(i)).ok());
  std::vector<Kv::Write> round;
  for (int i = 20; i < 44; ++i) round.push_back(Kv::Write{"k." + std::to_string(i), "", 0, true});
  for (const auto& answer : kv->write_all(std::move(round))) ASSERT_TRUE(answer.ok() && answer->has_value());
  std::vector<Kv::Write> alone{Kv::Write{"k.44", "", 0, true}};
  auto single = kv->write_all(std::move(alone));
  ASSERT_TRUE(single.front().ok() && single.front()->has_value());
  EXPECT_GT(**single.front(), 0u) << "a round of one removal did not answer its marker's revision";
  EXPECT_EQ(testing::bucket_stream_messages(nats_.url(), "sweep"), 50u) << "45 markers and 5 values, before the grace";

  EXPECT_EQ(testing::await_bucket_stream_messages(nats_.url(), "sweep", 5), 5u) << "the delete markers stayed in the stream";
  EXPECT_EQ(kv->markers_swept(), 45u);
  EXPECT_FALSE(kv->get("k.3").value().has_value());
  EXPECT_EQ(kv->get("k.47").value()->value, "v");
  EXPECT_TRUE(kv->create("k.3", "again").value().has_value());
  // A new watcher lists the values only.
  auto watch = kv->watch_all().value();
  int listed = 0;
  Kv::Change change;
  for (Kv::Watch::Next next; (next = watch->next(change, 2000)) != Kv::Watch::Next::caught_up;) {
    ASSERT_EQ(next, Kv::Watch::Next::change);
    EXPECT_FALSE(change.deleted) << change.key;
    ++listed;
  }
  EXPECT_EQ(listed, 6);
}

// Markers left by a process that ended before their grace (here one that
// does not sweep) are deleted by the next process that lists the bucket.
TEST_F(KvTest, DeleteMarkersFoundListingTheBucketAreDeleted) {
  {
    auto kv = Kv::open(sweeping(nats_.url(), "left", 0)).value();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(kv->create("k." + std::to_string(i), "v").value().has_value());
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(kv->remove("k." + std::to_string(i)).ok());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(testing::bucket_stream_messages(nats_.url(), "left"), 10u) << "a marker_grace of 0 deleted markers";
  auto kv = Kv::open(sweeping(nats_.url(), "left", 100)).value();
  auto watch = kv->watch_all().value();
  Kv::Change change;
  int markers = 0;
  for (Kv::Watch::Next next; (next = watch->next(change, 2000)) != Kv::Watch::Next::caught_up;) {
    ASSERT_EQ(next, Kv::Watch::Next::change);
    markers += change.deleted;
  }
  EXPECT_EQ(markers, 8);
  EXPECT_EQ(testing::await_bucket_stream_messages(nats_.url(), "left", 2), 2u);
  EXPECT_EQ(kv->markers_swept(), 8u);
}

// Only a marker is ever deleted: a revision that is a value (a watcher
// numbering apart from the leader could hand one over) stays.
TEST_F(KvTest, OnlyADeleteMarkerIsDeleted) {
  auto rev = kv_->create("live", "v").value();
  ASSERT_TRUE(rev.has_value());
  auto deleted = kv_->delete_marker(*rev);
  ASSERT_TRUE(deleted.ok()) << deleted.error().what();
  EXPECT_FALSE(*deleted);
  EXPECT_EQ(kv_->get("live").value()->value, "v");
  EXPECT_FALSE(kv_->delete_marker(*rev + 1000).value()) << "a revision never written";
}

// A bucket made by nats.c or the nats CLI denies deleting messages: it is
// used as before and keeps its markers.
TEST_F(KvTest, ABucketThatDeniesDeletesKeepsItsMarkers) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  kvStore* made = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, nats_.url().c_str()), NATS_OK);
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  kvConfig cfg;
  kvConfig_Init(&cfg);
  cfg.Bucket = "theirs";
  cfg.History = 1;
  cfg.StorageType = js_FileStorage;
  ASSERT_EQ(js_CreateKeyValue(&made, js, &cfg), NATS_OK);
  kvStore_Destroy(made);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);

  auto kv = Kv::open(sweeping(nats_.url(), "theirs", 50));
  ASSERT_TRUE(kv.ok()) << kv.error().what();
  ASSERT_TRUE((*kv)->create("k", "v").value().has_value());
  ASSERT_TRUE((*kv)->remove("k").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(testing::bucket_stream_messages(nats_.url(), "theirs"), 1u);
  EXPECT_EQ((*kv)->markers_swept(), 0u);
  EXPECT_TRUE((*kv)->create("k", "again").value().has_value());
}


// A NATS user without a permission the store needs: the server refuses the
// request and never answers it, so it times out. The failure names what was
// refused (not only "Timeout", which reads as the servers being away), the
// refusal is logged, and the marker sweeper says why markers stay.
TEST(KvPermissions, ARefusedPermissionIsNamedNotTakenForTheServersBeingAway) {
  if (!NatsServer::available()) GTEST_SKIP() << NatsServer::kMissing;
  const std::string dir = testing::fresh_temp_dir("kv-perm");
  ASSERT_FALSE(dir.empty());
  const int port = testing::free_loopback_port();
  ASSERT_NE(port, 0);
  const std::string config = dir + "/nats.conf";
  {
    std::ofstream out(config);
    out << "listen: 127.0.0.1:" << port << "\n"
        << "jetstream { store_dir: \"" << dir << "/js\" }\n"
        << "authorization { users = [ { user: app, password: secret, permissions: {\n"
        << "  publish: { allow: [\">\"], deny: [\"$JS.API.STREAM.MSG.DELETE.>\", \"$KV.perm.secret\"] },\n"
        << "  subscribe: { allow: [\">\"] } } } ] }\n";
  }
  NatsServer nats;
  nats.set_config(dir, config, port);
  ASSERT_TRUE(nats.start()) << nats.failure();

  std::mutex mu;
  std::vector<std::string> lines;
  JetStreamOptions o;
  o.servers = {nats.url()};
  o.bucket = "perm";
  o.user = "app";
  o.password = "secret";
  o.timeout = std::chrono::milliseconds(1000);
  o.marker_grace = std::chrono::milliseconds(50);
  o.logger = Logger(LogLevel::info, [&](LogLevel, std::string_view line) {
    std::lock_guard<std::mutex> lock(mu);
    lines.emplace_back(line);
  });
  auto opened = Kv::open(o);
  ASSERT_TRUE(opened.ok()) << opened.error().what();
  std::unique_ptr<Kv> kv = std::move(opened).value();

  auto secret = kv->create("secret", "v");
  ASSERT_FALSE(secret.ok()) << "a write the user may not make was written";
  EXPECT_EQ(secret.error().code(), Code::unavailable) << secret.error().what();
  EXPECT_NE(secret.error().message().find("Permissions Violation for Publish to \"$KV.perm.secret\""),
            std::string::npos)
      << secret.error().what();

  ASSERT_TRUE(kv->create("k", "v").ok());
  ASSERT_TRUE(kv->remove("k").ok());
  const auto logged = [&](const std::string& a, const std::string& b) {
    std::lock_guard<std::mutex> lock(mu);
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.find(a) != std::string::npos && l.find(b) != std::string::npos;
    });
  };
  const std::string denied = "Permissions Violation for Publish to \"$JS.API.STREAM.MSG.DELETE.KV_perm\"";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline &&
         !logged("cannot delete the delete markers of JetStream bucket perm", denied)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(logged("cannot delete the delete markers of JetStream bucket perm", denied));
  EXPECT_TRUE(logged("NATS refused JetStream bucket perm's connection", denied));
  EXPECT_EQ(kv->markers_swept(), 0u);
  std::lock_guard<std::mutex> lock(mu);
  for (const std::string& l : lines) std::cout << "  logged: " << l << "\n";
}

}  // namespace
}  // namespace dispatch::scheduler::jetstream
