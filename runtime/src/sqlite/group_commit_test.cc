// The writer's batches: writes run first without a savepoint each, and a
// write that fails sends the whole batch round again with one savepoint per
// write, so that it still fails alone: its partial changes go, the others
// commit once, and every write is reported once.
#include "sqlite/group_commit.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdio>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sqlite/schema.h"

namespace dispatch::scheduler::sqlite {
namespace {

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "group_commit_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db";
    remove_files();
    db_ = open_connection(path_, false);
    exec(db_.get(), "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)");
  }
  void TearDown() override {
    db_.reset();
    remove_files();
  }
  void remove_files() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path_ + suffix).c_str());
  }
  // Inserts (k, v) on the writer's connection; throws on error.
  void insert(const std::string& k, int64_t v) {
    Stmt s(db_.get(), "INSERT INTO t (k, v) VALUES (?1, ?2)");
    Using u(s);
    s.bind(1, k).bind(2, v);
    s.step();
  }
  // The committed rows, "k=v" in key order, read on a connection of its own.
  std::vector<std::string> rows() {
    Connection reader = open_connection(path_, false);
    Stmt s(reader.get(), "SELECT k, v FROM t ORDER BY k");
    Using u(s);
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0) + "=" + std::to_string(s.i64(1)));
    return out;
  }

  std::string path_;
  Connection db_;
};

// Holds the writer inside a body until released, so that the writes
// submitted meanwhile are queued together and share the next batch.
class Gate {
 public:
  // Queues a write whose body waits here until open(); returns once the
  // writer is inside it. The future gets that write's result.
  std::future<Result<int>> hold(GroupCommit& writer) {
    auto done = std::make_shared<std::promise<Result<int>>>();
    std::future<Result<int>> result = done->get_future();
    writer.submit<int>([done](Result<int> r) { done->set_value(std::move(r)); },
                       [this] {
                         wait();
                         return 0;
                       },
                       Mode{});
    until_entered();
    return result;
  }
  void open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void until_entered() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return entered_; });
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false, open_ = false;
};

TEST_F(GroupCommitTest, AWriteThatFailsHalfwayFailsAloneAndTheOthersCommitOnce) {
  GroupCommit writer(db_.get(), GroupCommitOptions{}, nullptr);
  const uint64_t rollbacks_before = writer.rollbacks();
  Gate gate;
  std::future<Result<int>> gated = gate.hold(writer);

  // Queued together behind the gate: two good writes around one that
  // changes a row and then fails.
  std::vector<std::promise<Result<int>>> done(3);
  std::vector<int> runs(3, 0);  // on the writer thread only
  auto report = [&](int i) { return [&, i](Result<int> r) { done[i].set_value(std::move(r)); }; };
  writer.submit<int>(report(0), [&] {
    ++runs[0];
    insert("a", 1);
    return 1;
  }, Mode{/*synced=*/false, /*self_contained=*/false});
  writer.submit<int>(report(1), [&]() -> int {
    ++runs[1];
    insert("b", 2);
    throw Error(Code::failed_precondition, "the second write refuses after its insert");
  }, Mode{/*synced=*/false, /*self_contained=*/false});
  writer.submit<int>(report(2), [&] {
    ++runs[2];
    insert("c", 3);
    return 3;
  }, Mode{/*synced=*/false, /*self_contained=*/true});
  gate.open();

  ASSERT_TRUE(gated.get().ok());
  auto a = done[0].get_future().get();
  auto b = done[1].get_future().get();
  auto c = done[2].get_future().get();
  ASSERT_TRUE(a.ok()) << a.error().what();
  EXPECT_EQ(*a, 1);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code(), Code::failed_precondition);
  EXPECT_NE(std::string(b.error().what()).find("refuses after its insert"), std::string::npos)
      << b.error().what();
  ASSERT_TRUE(c.ok()) << c.error().what();
  EXPECT_EQ(*c, 3);
  writer.stop();

  // The failed write's insert is gone; the others are there once each
  // (a second insert of "a" or "c" would have failed on the key).
  EXPECT_EQ(rows(), (std::vector<std::string>{"a=1", "c=3"}));
  // The batch ran twice: first without savepoints, then with them after
  // the failure; the write after the failing one ran only in the second.
  EXPECT_EQ(runs, (std::vector<int>{2, 2, 1}));
  // The first pass's rollback and the failed write's own both count, so
  // that caches kept by bodies start afresh (Names in entity_store.cc).
  EXPECT_GE(writer.rollbacks() - rollbacks_before, 2u);
  EXPECT_EQ(writer.commits(), 2u);
  EXPECT_EQ(writer.writes(), 4u);
}

TEST_F(GroupCommitTest, ABatchWhereNothingFailsRunsEachWriteOnce) {
  GroupCommit writer(db_.get(), GroupCommitOptions{}, nullptr);
  Gate gate;
  std::future<Result<int>> gated = gate.hold(writer);
  constexpr int kWrites = 50;
  std::vector<std::promise<Result<int>>> done(kWrites);
  std::vector<int> runs(kWrites, 0);
  for (int i = 0; i < kWrites; ++i) {
    writer.submit<int>([&, i](Result<int> r) { done[i].set_value(std::move(r)); }, [&, i] {
      ++runs[i];
      insert("k" + std::to_string(100 + i), i);
      return i;
    }, Mode{/*synced=*/false, /*self_contained=*/i % 2 == 0});
  }
  gate.open();
  ASSERT_TRUE(gated.get().ok());
  for (int i = 0; i < kWrites; ++i) {
    auto r = done[i].get_future().get();
    ASSERT_TRUE(r.ok()) << r.error().what();
    EXPECT_EQ(*r, i);
  }
  writer.stop();
  EXPECT_EQ(rows().size(), static_cast<std::size_t>(kWrites));
  EXPECT_EQ(runs, std::vector<int>(kWrites, 1));
  EXPECT_EQ(writer.rollbacks(), 0u);
  EXPECT_EQ(writer.commits(), 2u);
}

}  // namespace
}  // namespace dispatch::scheduler::sqlite
