#pragma once
// One WebSocket client of the JSON protocol, bridged to one upstream
// sync.v1 Session.
//
// Runs on its own strand. Frames from the client are decoded and sent
// upstream (bad ones are answered with an error frame; the socket stays
// open). Messages from syncd are encoded on gRPC's thread and written in
// order through a bounded queue: when it is full, the session stops
// reading from syncd, which then serves this client from its log once it
// catches up. Memory per socket stays bounded whatever the client does.

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <memory>
#include <string>

#include "upstream/upstream_session.h"
#include "ws/context.h"

namespace bridge {

struct SocketParams {
  bool crdt = false;           // the /crdt dialect (codec/crdt_codec.h)
  std::string channel = "default";
  std::int64_t since = 0;
  bool head = false;           // since=head: no history
  std::string authorization;   // "Bearer <token>", passed upstream
  std::string subprotocol;     // echoed in the handshake when the client offered some
  std::string error;           // a bad query: sent, then the socket closes
};

class WsSession final : public std::enable_shared_from_this<WsSession>, public upstream::Listener {
 public:
  WsSession(boost::beast::tcp_stream&& stream, BridgeContext& ctx);
  ~WsSession() override;

  void run(boost::beast::http::request<boost::beast::http::string_body> req, SocketParams params);
  // Thread-safe: sends a close frame once queued frames are written.
  void close(boost::beast::websocket::close_code code, std::string reason);

  bool on_upstream_message(const api::SessionResponse& msg) override;
  bool on_upstream_broadcast(std::int64_t version, std::string_view patch) override;
  void on_upstream_done(const grpc::Status& status) override;
  void on_upstream_drained() override;

 private:
  using Frame = std::shared_ptr<const std::string>;

  void on_accept(boost::beast::error_code ec);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  // Handles a client frame; false when reading must pause (syncd is behind).
  bool handle_frame(std::string_view text);
  bool handle_crdt_frame(std::string_view text);
  // The frame for a message from syncd in each dialect (null: none).
  std::shared_ptr<const std::string> json_frame(const api::SessionResponse& msg);
  std::shared_ptr<const std::string> crdt_frame(const api::SessionResponse& msg);
  // From a gRPC thread: queues `frame` for the strand; false to pause syncd.
  bool deliver(Frame frame);
  void enqueue(Frame frame);  // on the strand
  void send_error(std::string_view code, std::string_view message);  // on the strand
  void do_write();
  void on_write(boost::beast::error_code ec, std::size_t bytes);
  void begin_close(boost::beast::websocket::close_code code, std::string reason);  // on the strand
  void heartbeat_upstream();
  void watch_idle();
  void finish();  // the socket is done: release the upstream

  BridgeContext& ctx_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::flat_buffer buffer_;
  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::steady_timer idle_timer_;
  std::chrono::steady_clock::time_point last_heard_;  // any frame, pings and pongs too
  SocketParams params_;
  std::shared_ptr<upstream::UpstreamSession> upstream_;

  // Strand-only state.
  std::deque<Frame> queue_;  // front is being written
  bool closing_ = false;
  // Reading from the client pauses while syncd's side is full (resumed by
  // on_upstream_drained) or while the client is not reading our frames
  // (resumed as the queue drains): a flood waits in TCP, not in memory.
  bool wait_upstream_ = false;
  bool wait_queue_ = false;
  bool reading_ = false;
  void maybe_read();
  bool closed_ = false;
  bool counted_ = false;
  boost::beast::websocket::close_reason close_reason_;

  // Touched only by on_upstream_message (gRPC delivers one read at a time).
  std::string server_id_;
  google::protobuf::ListValue pull_changes_;  // a CRDT pull's pages so far

  // Frames handed to the strand and not yet written (any thread).
  std::atomic<std::size_t> backlog_{0};
  std::atomic<bool> upstream_paused_{false};
};

}  // namespace bridge
