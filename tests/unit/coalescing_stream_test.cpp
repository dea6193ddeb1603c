// The write-coalescing layer under the bridge's websockets, on a real
// loopback TCP connection: bytes arrive complete and in order, writes stop
// completing while the peer reads nothing, and a flush waits for the send.

#include "ws/coalescing_stream.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/strand.hpp>

namespace bridge {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct Pair {
  net::io_context io;
  std::optional<CoalescingStream> writer;
  tcp::socket reader{io};

  Pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    boost::beast::tcp_stream client(net::make_strand(io));
    client.socket().connect(acceptor.local_endpoint());
    acceptor.accept(reader);
    writer.emplace(std::move(client));
  }
};

std::string chunk(int i, std::size_t size) {
  std::string s = std::to_string(i) + ":";
  s.resize(size, static_cast<char>('a' + i % 26));
  return s;
}

// Writes chunks 0..n-1 one after another, each starting when the last completed.
void write_chain(CoalescingStream& s, int i, int n, std::size_t size, int* completed) {
  if (i == n) return;
  auto bytes = std::make_shared<std::string>(chunk(i, size));
  auto done = [&s, bytes, i, n, size, completed](boost::beast::error_code ec, std::size_t k) {
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_EQ(k, bytes->size());
    ++*completed;
    write_chain(s, i + 1, n, size, completed);
  };
  s.async_write_some(net::buffer(*bytes), std::move(done));
}

// Reads chunks 0..n-1 as the peer, running the writer meanwhile.
void expect_chunks_read(Pair& p, int n, std::size_t size) {
  std::string expected;
  for (int i = 0; i < n; ++i) expected += chunk(i, size);
  std::string got(expected.size(), '\0');
  net::async_read(p.reader, net::buffer(got), [](boost::beast::error_code ec, std::size_t) { ASSERT_FALSE(ec); });
  p.io.run();
  EXPECT_TRUE(got == expected) << "bytes differ from what was written";
}

TEST(CoalescingStream, EveryByteArrivesInOrder) {
  Pair p;
  constexpr int kChunks = 5000;
  int completed = 0;
  write_chain(*p.writer, 0, kChunks, 100, &completed);
  expect_chunks_read(p, kChunks, 100);
  EXPECT_EQ(completed, kChunks);
}

TEST(CoalescingStream, WritesStopCompletingWhileThePeerReadsNothing) {
  Pair p;
  constexpr int kChunks = 400;          // 400 × 64 KiB = 25 MiB: far past any socket buffer
  constexpr std::size_t kSize = 64 * 1024;
  int completed = 0;
  write_chain(*p.writer, 0, kChunks, kSize, &completed);
  p.io.run_for(std::chrono::milliseconds(500));
  // What completed sits in the kernel's buffers or in pending, bounded by
  // kMaxPending; the rest waits.
  EXPECT_LT(completed, kChunks);
  EXPECT_GT(completed, 0);
  p.io.restart();

  expect_chunks_read(p, kChunks, kSize);
  EXPECT_EQ(completed, kChunks);
}

TEST(CoalescingStream, FlushCompletesOnlyOnceEverythingWasSent) {
  Pair p;
  std::string big(8 << 20, 'x');  // more than the kernel takes at once
  bool wrote = false, flushed = false;
  p.writer->async_write_some(net::buffer(big), [&](boost::beast::error_code ec, std::size_t) {
    ASSERT_FALSE(ec);
    wrote = true;
    p.writer->async_flush([&](boost::beast::error_code ec) {
      ASSERT_FALSE(ec);
      flushed = true;
    });
  });
  p.io.run_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(wrote);
  EXPECT_FALSE(flushed) << "flushed while the peer had read nothing";
  p.io.restart();
  std::string got(big.size(), '\0');
  net::async_read(p.reader, net::buffer(got), [](boost::beast::error_code ec, std::size_t) { ASSERT_FALSE(ec); });
  p.io.run();
  EXPECT_TRUE(flushed);
  EXPECT_TRUE(got == big);
}

TEST(CoalescingStream, ASendErrorFailsLaterWrites) {
  Pair p;
  p.reader.close();
  boost::beast::error_code last;
  int completed = 0;
  // Keep writing until the closed peer makes a send fail; the error sticks.
  std::function<void()> next = [&] {
    auto bytes = std::make_shared<std::string>(64 * 1024, 'y');
    p.writer->async_write_some(net::buffer(*bytes), [&, bytes](boost::beast::error_code ec, std::size_t) {
      ++completed;
      last = ec;
      if (!ec && completed < 10000) next();
    });
  };
  next();
  p.io.run();
  EXPECT_TRUE(last) << "no write failed after the peer closed";
  boost::beast::error_code after;
  std::string more = "z";
  p.writer->async_write_some(net::buffer(more), [&](boost::beast::error_code ec, std::size_t) { after = ec; });
  p.io.restart();
  p.io.run();
  EXPECT_EQ(after, last);
}

}  // namespace
}  // namespace bridge
