#pragma once
// One WebSocket client of the JSON protocol (/sync) or the CRDT relay
// (/crdt): the handshake, the read loop, the timers and the frame queue.
// What the client sees of its channel is delivery/delivery.h's work; how
// its frames read and are written is its dialect's (dialect/dialect.h).
//
// The socket makes unary calls to syncd with its own token
// (socket/socket_upstream.h) and reads its channel from the channel's shared
// feed (upstream/feed.h). Reading from the client pauses while its patches
// wait to be pushed, while it does not read its frames, or while it sends
// faster than --max-read-rate: a flood waits in TCP, not in memory.
//
// Everything below runs on the socket's strand; feed and gRPC callbacks post
// to it.

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/container/deque.hpp>
#include <memory>
#include <optional>
#include <string>

#include "delivery/delivery.h"
#include "delivery/feed_link.h"
#include "dialect/dialect.h"
#include "ws/coalescing_stream.h"
#include "ws/read_rate.h"
#include "ws/context.h"
#include "socket/socket_upstream.h"
#include "socket/socket_presence.h"
#include "socket/token_watch.h"

namespace bridge {

struct SocketParams {
  bool crdt = false;           // the /crdt dialect (codec/crdt_codec.h)
  std::string channel = "default";
  std::int64_t since = 0;
  bool head = false;           // since=head: no history
  std::string authorization;   // "Bearer <jwt>", its syntax checked (auth/token_format.h); passed upstream
  std::string auth_error;      // a malformed token: sent as `unauthenticated`, then the socket closes
  std::string subprotocol;     // echoed in the handshake when the client offered some
  std::string error;           // a bad query: sent, then the socket closes
  std::string address;         // the client's IP address, for --max-sockets-per-address
  bool presence = false;       // ?presence=1: the channel's presence once the history is sent
  std::string client_id;       // ?clientId=: names the socket's client in presence
};

class WsSession final : public std::enable_shared_from_this<WsSession>,
                        private delivery::Sink,
                        private SocketPresence::Client {
 public:
  WsSession(boost::beast::tcp_stream&& stream, BridgeContext& ctx);
  ~WsSession() override;

  void run(boost::beast::http::request<boost::beast::http::string_body> req, SocketParams params);
  // Thread-safe: sends a close frame once queued frames are written.
  void close(boost::beast::websocket::close_code code, std::string reason);
  // The socket's strand.
  auto strand() { return ws_.get_executor(); }

 private:
  using Frame = dialect::Frame;

  // delivery::Sink: what the channel sends, in the socket's dialect.
  std::size_t backlog() const override { return queue_.size(); }
  bool admitted() override;  // --max-sockets-per-subject, once syncd has accepted the token
  void join_presence();
  void joined(const api::ChannelInfo& info) override;
  void page(api::SyncState& state, bool continues) override;
  void deliver(const Sequencer::Out& out) override;
  void request_failed(const grpc::Status& status) override;
  void failed(const grpc::Status& status) override { end_with(status); }
  void outbox_room() override;

  // SocketPresence::Client
  void presence_frame(presence::Frame frame) override;
  void presence_error(const std::string& code, const std::string& message) override;
  void handle_presence(const codec::ClientMessage& msg);

  // Runs a function on the strand, keeping the socket alive until it has
  // run, or drops it once the socket is gone. Holds no reference to the
  // socket: gRPC threads call it after the socket may have been destroyed.
  delivery::Post strand_post();
  // A reason to refuse the socket before it joins, sent with `close`; false when there is none.
  bool refused();

  // The client side.
  void on_accept(boost::beast::error_code ec);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void maybe_read();
  void charge_read(std::size_t bytes);  // --max-read-rate: delays the next read when over
  void handle_frame(std::string_view text);
  void watch_idle();
  // On the idle timer: an empty frame queue and an idle stream give their
  // buffers back, so 10,000 quiet sockets do not each keep their last burst.
  void release_idle_memory();

  // Frames to the client.
  void enqueue(Frame frame);
  void send_error(std::string_view code, std::string_view message);
  void write_queue();
  void on_drained();
  void end_with(const grpc::Status& status);  // an error frame for `status`, then close
  void begin_close(boost::beast::websocket::close_code code, std::string reason);
  void finish();  // the socket is done: leave the feed

  BridgeContext& ctx_;
  boost::beast::websocket::stream<CoalescingStream> ws_;
  boost::beast::flat_buffer buffer_;
  boost::asio::steady_timer idle_timer_;
  boost::asio::steady_timer read_timer_;  // the next read, when the socket is over its read rate
  ReadRate read_rate_;
  syncd::auth::KeyedCap::Hold address_hold_;
  syncd::auth::KeyedCap::Hold subject_hold_;
  std::chrono::steady_clock::time_point last_heard_;  // any frame, pings and pongs too
  SocketParams params_;
  TokenWatch token_;

  // The channel side, set up in run().
  std::unique_ptr<dialect::Dialect> dialect_;
  std::optional<SocketUpstream> upstream_;
  std::optional<delivery::Delivery> delivery_;
  std::optional<delivery::FeedLink> link_;
  std::unique_ptr<upstream::Subscription> feed_;
  std::shared_ptr<SocketPresence> presence_;  // null when the bridge has no presence link

  // Frames not yet handed to the stream: it takes them while it holds under
  // CoalescingStream::kMaxPending bytes, so these wait only for a client
  // that does not read.
  boost::container::deque<Frame> queue_;
  bool waiting_room_ = false;  // the stream is full; it calls write_queue() when not
  bool drain_posted_ = false;  // on_drained() is posted
  bool closing_ = false;
  bool closed_ = false;
  bool counted_ = false;
  bool reading_ = false;
  bool wait_outbox_ = false;  // reading pauses while patches wait to be pushed,
  bool wait_queue_ = false;   // while the client does not read its frames,
  bool wait_rate_ = false;    // and while it is over its read rate
  boost::beast::websocket::close_reason close_reason_;
};

}  // namespace bridge
