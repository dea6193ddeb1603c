// The write-coalescing layer under the bridge's websockets, on a real
// loopback TCP connection: bytes arrive complete and in order, writes stop
// completing while the peer reads nothing, and a flush waits for the send.
// Frames the bridge appends itself reach a Beast websocket client as the
// messages written, among Beast's own control frames.

#include "ws/coalescing_stream.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "ws/text_frame.h"

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

// A server websocket over CoalescingStream and a plain Beast client, past
// the handshake.
struct WsPair {
  net::io_context io;
  std::optional<boost::beast::websocket::stream<CoalescingStream>> server;
  boost::beast::websocket::stream<tcp::socket> client{io};

  WsPair() {
    tcp::acceptor acceptor(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    client.next_layer().connect(acceptor.local_endpoint());
    tcp::socket accepted(io);
    acceptor.accept(accepted);
    server.emplace(CoalescingStream(boost::beast::tcp_stream(std::move(accepted))));
    bool accepted_ok = false, handshake_ok = false;
    server->async_accept([&](boost::beast::error_code ec) { accepted_ok = !ec; });
    client.async_handshake("127.0.0.1", "/", [&](boost::beast::error_code ec) { handshake_ok = !ec; });
    io.run();
    io.restart();
    EXPECT_TRUE(accepted_ok && handshake_ok);
  }

  bool append(const std::string& text) {
    return server->next_layer().try_append(TextFrameHeader(text.size()).bytes(), text);
  }

  // Reads `n` messages as the client, running the server meanwhile.
  std::vector<std::string> read_messages(std::size_t n) {
    std::vector<std::string> got;
    boost::beast::flat_buffer buffer;
    std::function<void()> next = [&] {
      client.async_read(buffer, [&](boost::beast::error_code ec, std::size_t) {
        ASSERT_FALSE(ec) << ec.message();
        EXPECT_TRUE(client.got_text());
        got.push_back(boost::beast::buffers_to_string(buffer.data()));
        buffer.consume(buffer.size());
        if (got.size() < n) next();
      });
    };
    next();
    io.restart();
    io.run();
    return got;
  }
};

std::string message(std::size_t size, int i) {
  std::string s = std::to_string(i) + "/" + std::to_string(size) + ":";
  s.resize(size, static_cast<char>('a' + i % 26));
  return s.substr(0, size);
}

TEST(CoalescingStream, AppendedFramesArriveAsTheMessagesWritten) {
  WsPair p;
  // Every length encoding: 7 bits, 16 bits (from 126), 64 bits (from 65,536).
  const std::vector<std::size_t> sizes = {0, 1, 125, 126, 127, 65535, 65536, 100000, 3};
  std::vector<std::string> sent;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    sent.push_back(message(sizes[i], static_cast<int>(i)));
    ASSERT_TRUE(p.append(sent.back())) << "refused with " << i << " frames pending";
    // Beast's own frames go through the same stream between ours.
    if (i == 2) p.server->async_ping("between", [](boost::beast::error_code ec) { ASSERT_FALSE(ec); });
  }
  EXPECT_EQ(p.read_messages(sent.size()), sent);
}

TEST(CoalescingStream, AppendRefusesWhileThePeerReadsNothingUntilThereIsRoom) {
  WsPair p;
  std::vector<std::string> sent;
  while (sent.size() < 2000) {
    std::string m = message(64 * 1024, static_cast<int>(sent.size()));
    if (!p.append(m)) break;
    sent.push_back(std::move(m));
    p.io.restart();
    p.io.poll();  // let sends run, as the strand would between frames
  }
  ASSERT_LT(sent.size(), 2000u) << "never refused: nothing bounds the pending bytes";
  bool room = false;
  p.server->next_layer().when_room([&] { room = true; });
  p.io.restart();
  p.io.run_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(room) << "room while the peer had read nothing";

  EXPECT_EQ(p.read_messages(sent.size()), sent);
  EXPECT_TRUE(room);
  const std::string last = "after the backlog";
  EXPECT_TRUE(p.append(last));
  EXPECT_EQ(p.read_messages(1), std::vector<std::string>{last});
}

}  // namespace
}  // namespace bridge
