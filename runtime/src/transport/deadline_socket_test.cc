// DeadlineSocket over a socketpair: what it reads and writes, that a read
// or a write with nothing to do gives up at its deadline (not before), that
// a receive timeout left by one call serves the next, and a peer's close.
#include "transport/deadline_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>

#include <string>
#include <thread>
#include <vector>

namespace dispatch::transport {
namespace {

using Clock = DeadlineSocket::Clock;
using std::chrono::milliseconds;

class SocketPair : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0); }
  void TearDown() override {
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }
  int ours() const { return fds_[0]; }
  int theirs() const { return fds_[1]; }
  void close_theirs() {
    ::close(fds_[1]);
    fds_[1] = -1;
  }

  int fds_[2] = {-1, -1};
  Clock::duration receive_timeout_{0};
};

TEST_F(SocketPair, ReadsWhatIsThereAndWritesScatteredBuffers) {
  DeadlineSocket socket(ours(), receive_timeout_, Clock::now() + milliseconds(2000));
  ASSERT_EQ(::write(theirs(), "hello", 5), 5);
  char buf[16];
  boost::system::error_code ec;
  EXPECT_EQ(socket.read_some(boost::asio::buffer(buf), ec), 5u);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(std::string(buf, 5), "hello");
  // The receive timeout is set a margin short of the deadline, and kept.
  EXPECT_GT(receive_timeout_, milliseconds(1500));
  EXPECT_LT(receive_timeout_, milliseconds(2000));

  const std::string a = "ab", b = "cde";
  const std::vector<boost::asio::const_buffer> parts{boost::asio::buffer(a), boost::asio::const_buffer(),
                                                     boost::asio::buffer(b)};
  EXPECT_EQ(socket.write_some(parts, ec), 5u);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(::read(theirs(), buf, sizeof buf), 5);
  EXPECT_EQ(std::string(buf, 5), "abcde");
}

TEST_F(SocketPair, ReadGivesUpAtTheDeadline) {
  // Long enough for a read under SO_RCVTIMEO, then one that polls.
  for (const auto wait : {milliseconds(300), milliseconds(50)}) {
    const auto began = Clock::now();
    DeadlineSocket socket(ours(), receive_timeout_, began + wait);
    char buf[16];
    boost::system::error_code ec;
    EXPECT_EQ(socket.read_some(boost::asio::buffer(buf), ec), 0u);
    const auto took = Clock::now() - began;
    EXPECT_EQ(ec, boost::beast::error::timeout) << ec.message();
    EXPECT_GE(took, wait);
    EXPECT_LT(took, wait + milliseconds(1000)) << "waited well past the deadline";
  }
}

TEST_F(SocketPair, ATimeoutLeftByAnEarlierCallDoesNotCutALaterOneShort) {
  {
    DeadlineSocket socket(ours(), receive_timeout_, Clock::now() + milliseconds(200));
    char buf[1];
    boost::system::error_code ec;
    socket.read_some(boost::asio::buffer(buf), ec);
    ASSERT_EQ(ec, boost::beast::error::timeout);
  }
  ASSERT_GT(receive_timeout_, Clock::duration::zero());
  // No deadline: the answer 400 ms later is still read.
  std::thread answer([&] {
    std::this_thread::sleep_for(milliseconds(400));
    ASSERT_EQ(::write(theirs(), "x", 1), 1);
  });
  DeadlineSocket socket(ours(), receive_timeout_, std::nullopt);
  char buf[1];
  boost::system::error_code ec;
  EXPECT_EQ(socket.read_some(boost::asio::buffer(buf), ec), 1u);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(receive_timeout_, Clock::duration::zero());
  answer.join();
}

TEST_F(SocketPair, WriteToAFullSocketGivesUpAtTheDeadline) {
  DeadlineSocket socket(ours(), receive_timeout_, Clock::now() + milliseconds(150));
  const std::string chunk(64 * 1024, 'x');
  boost::system::error_code ec;
  std::size_t total = 0;
  for (int i = 0; i < 10'000 && !ec; ++i) total += socket.write_some(boost::asio::buffer(chunk), ec);
  EXPECT_EQ(ec, boost::beast::error::timeout) << ec.message() << " after " << total << " bytes";
  EXPECT_GT(total, 0u);
}

TEST_F(SocketPair, PeerCloseIsEndOfFile) {
  close_theirs();
  DeadlineSocket socket(ours(), receive_timeout_, Clock::now() + milliseconds(1000));
  char buf[4];
  boost::system::error_code ec;
  EXPECT_EQ(socket.read_some(boost::asio::buffer(buf), ec), 0u);
  EXPECT_EQ(ec, boost::asio::error::eof);
  EXPECT_EQ(socket.write_some(boost::asio::buffer(buf), ec), 0u);
  EXPECT_EQ(ec, boost::asio::error::broken_pipe) << ec.message();
}

}  // namespace
}  // namespace dispatch::transport
