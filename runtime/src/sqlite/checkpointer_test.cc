// The checkpoint thread: the log is copied back and starts again from its
// beginning while the writer mostly only commits; the writer gets its
// automatic checkpoint back when the thread stops.
#include "sqlite/checkpointer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "sqlite/schema.h"

namespace dispatch::scheduler::sqlite {
namespace {

class CheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "checkpointer_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db";
    remove_files();
    writer_ = open_connection(path_, false);
    exec(writer_.get(), "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)");
  }
  void TearDown() override {
    writer_.reset();
    remove_files();
  }
  void remove_files() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path_ + suffix).c_str());
  }
  // One commit of about two pages.
  void commit_row() { exec(writer_.get(), "INSERT INTO t (v) VALUES (zeroblob(6000))"); }
  std::uintmax_t log_bytes() const { return std::filesystem::file_size(path_ + "-wal"); }

  std::string path_;
  Connection writer_;
};

TEST_F(CheckpointerTest, TheThreadCopiesTheLogAndTheLogStartsAgain) {
  constexpr int kFrames = 20;
  Checkpointer checkpointer(writer_.get(), path_, false, kFrames);
  for (int i = 0; i < 300; ++i) {
    commit_row();
    // The writer never waits for the thread; the test does, so that the
    // thread keeps up however busy the machine is (a fixed pause was not
    // enough under a loaded CI run).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (checkpointer.checkpoints() < checkpointer.wakes() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    ASSERT_GE(checkpointer.checkpoints(), checkpointer.wakes()) << "the thread did not checkpoint within 5 s";
  }
  EXPECT_GT(checkpointer.checkpoints(), 0u);
  // 300 commits wrote at least 600 frames; the log never held much more
  // than the threshold, because it started again after each checkpoint.
  const std::uintmax_t frame = 4096 + 24;
  EXPECT_LT(log_bytes(), 4 * kFrames * frame) << "the log was not checkpointed";
  // The thread did all the copying: the writer never had to catch up
  // (without the thread it would have, every kCatchUp thresholds).
  EXPECT_EQ(checkpointer.writer_checkpoints(), 0u);
}

TEST_F(CheckpointerTest, LogFramesCountEveryCommitsPagesAcrossTheLogsRestarts) {
  constexpr int kFrames = 20;
  Checkpointer checkpointer(writer_.get(), path_, false, kFrames);
  constexpr int kCommits = 100;
  for (int i = 0; i < kCommits; ++i) {
    commit_row();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (checkpointer.checkpoints() < checkpointer.wakes() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  // Each commit appends two pages of its row and one or two of the tree
  // above it, also after the log started again (it did: checkpoints ran).
  ASSERT_GT(checkpointer.checkpoints(), 0u);
  EXPECT_GE(checkpointer.log_frames(), 2u * kCommits);
  EXPECT_LE(checkpointer.log_frames(), 5u * kCommits);
}

TEST_F(CheckpointerTest, TheThreadIsWokenOncePerThresholdOfNewFramesNotPerCommit) {
  constexpr int kFrames = 40;
  Checkpointer checkpointer(writer_.get(), path_, false, kFrames);
  constexpr int kCommits = 400;
  for (int i = 0; i < kCommits; ++i) {
    commit_row();
    // Time for the thread to keep up, so that it is idle at every commit.
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  // About 3 frames a commit: a checkpoint per threshold of them (a few
  // more near the catch-up point), not one at every commit past the first
  // threshold.
  EXPECT_GT(checkpointer.checkpoints(), 0u);
  EXPECT_LT(checkpointer.checkpoints(), static_cast<uint64_t>(kCommits / 5));
  EXPECT_LT(log_bytes(), (Checkpointer::kCatchUp + 4) * kFrames * (4096 + 24)) << "the log was not checkpointed";
}

TEST_F(CheckpointerTest, TheWriterCheckpointsForItselfAgainOnceItStops) {
  {
    Checkpointer checkpointer(writer_.get(), path_, false, 20);
    checkpointer.stop();
    EXPECT_EQ(checkpointer.checkpoints(), 0u);
  }
  // stop() gave the writer its automatic checkpoint back, at the
  // checkpointer's threshold.
  for (int i = 0; i < 300; ++i) commit_row();
  EXPECT_LT(log_bytes(), 8 * 20 * (4096 + 24)) << "the writer did not checkpoint";
}

}  // namespace
}  // namespace dispatch::scheduler::sqlite
