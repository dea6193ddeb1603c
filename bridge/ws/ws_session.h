#pragma once
// One WebSocket client of the JSON protocol (or the /crdt dialect).
//
// The socket reads its channel from the channel's shared feed
// (upstream/feed.h) and makes unary calls to syncd with its own token:
// GetChanges for history and sync requests, GetChannelInfo to check a token,
// Push for its patches, one batch in flight at a time so they commit in the
// order sent. A Sequencer merges the feed with the Push answers, so the
// client sees every version once, in order: others' patches as broadcasts,
// its own as acks.
//
// Joining: subscribe to the feed (buffering what it delivers), read the log
// from `since` until a page says there is no more, then send the buffered
// items after the last page and go live. A client that does not read its
// frames falls behind: once its queue is full it stops taking items from the
// feed and, when the queue has drained, joins again from its last version.
// So memory per socket stays bounded whatever the client does, and no other
// socket waits for it.
//
// Everything below runs on the socket's strand; feed and gRPC callbacks post
// to it.

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <atomic>
#include <boost/container/deque.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "upstream/feed.h"
#include "ws/coalescing_stream.h"
#include "ws/context.h"
#include "ws/sequencer.h"

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
};

class WsSession final : public std::enable_shared_from_this<WsSession>, public upstream::FeedListener {
 public:
  WsSession(boost::beast::tcp_stream&& stream, BridgeContext& ctx);
  ~WsSession() override;

  void run(boost::beast::http::request<boost::beast::http::string_body> req, SocketParams params);
  // Thread-safe: sends a close frame once queued frames are written.
  void close(boost::beast::websocket::close_code code, std::string reason);

  void on_feed_ready(std::int64_t origin) override;
  void on_feed_item(upstream::Item item) override;
  void on_feed_done(const grpc::Status& status) override;

 private:
  using Frame = std::shared_ptr<const std::string>;
  enum class Mode { kJoining, kLive, kBehind };

  // The client side.
  void on_accept(boost::beast::error_code ec);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void maybe_read();
  void charge_read(std::size_t bytes);  // --max-read-rate: delays the next read when over
  bool admit_subject();  // --max-sockets-per-subject, once syncd has accepted the token
  void handle_frame(std::string_view text);
  void handle_crdt_frame(std::string_view text);

  // The channel side.
  void read_history();
  void on_info(const grpc::Status& status, const api::ChannelInfo& info);
  void on_page(const grpc::Status& status, api::GetChangesResponse& page);
  // The versions asked for were compacted: the channel's state instead, as
  // sync_state pages (answering a sync_request when `requested`), then the
  // log after it.
  void read_snapshot(bool requested);
  void on_snapshot(const grpc::Status& status, std::vector<api::SnapshotPage>& pages, bool requested);
  void skip_compacted(bool pull);  // /crdt: what remains after a forced compaction
  void go_live();
  void take_inbox();  // on the strand: every item the feed handed over
  void on_item(upstream::Item item);
  void fell_behind();  // the feed outran the strand: items were dropped
  void rejoin_if_drained();
  void emit(std::vector<Sequencer::Out>& outs);
  Frame broadcast_frame(const upstream::Item& item);
  Frame ack_frame(const api::Ack& ack);

  // Requests upstream, with the socket's token.
  void submit(api::Patch patch);
  void reject_too_large(const std::string& id, const std::string& size);
  void push_next();
  void on_pushed(const grpc::Status& status, const api::PushResponse& response, const std::vector<std::string>& ids);
  void request_sync(std::int64_t from, int limit, bool crdt_pull);
  void next_sync();
  void refresh(std::string token);
  void watch_expiry();

  // Frames to the client.
  void enqueue(Frame frame);
  void send_error(std::string_view code, std::string_view message);
  void write_queue();
  void on_drained();
  void end_with(const grpc::Status& status);  // an error frame for `status`, then close
  void begin_close(boost::beast::websocket::close_code code, std::string reason);
  void watch_idle();
  void finish();  // the socket is done: leave the feed

  // Posts `fn` to the strand, keeping the session alive.
  template <class Fn>
  void on_strand(Fn&& fn);

  BridgeContext& ctx_;
  boost::beast::websocket::stream<CoalescingStream> ws_;
  boost::beast::flat_buffer buffer_;
  boost::asio::steady_timer idle_timer_;
  boost::asio::steady_timer expiry_timer_;
  boost::asio::steady_timer read_timer_;  // the next read, when the socket is over its read rate
  // --max-read-rate as a virtual clock (GCRA): when the socket's reads so
  // far would have been paid for. Reading waits while it runs a burst ahead.
  std::chrono::steady_clock::time_point read_paid_until_{};
  syncd::auth::KeyedCap::Hold address_hold_;
  syncd::auth::KeyedCap::Hold subject_hold_;
  std::chrono::steady_clock::time_point last_heard_;  // any frame, pings and pongs too
  SocketParams params_;
  std::string subject_;        // the token's `sub`; a refresh must keep it
  std::unique_ptr<upstream::Subscription> feed_;

  // The channel side. (Boost's deque allocates nothing until used, which
  // matters for idle sockets: std::deque allocates about 600 bytes each.)
  Mode mode_ = Mode::kJoining;
  bool ready_ = false;          // the feed has said where it starts
  bool first_join_ = true;      // history still comes as sync_state pages
  bool snapshot_open_ = false;  // a mid-stream snapshot's closing page is still owed
  bool live_once_ = false;      // patches are pushed only once live
  bool reading_history_ = false;
  bool reread_ = false;         // items were dropped while joining: read the log once more
  boost::container::deque<upstream::Item> buffered_;  // feed items while joining
  Sequencer seq_;
  std::string server_id_;       // for the /crdt dialect

  // Requests upstream.
  boost::container::deque<api::Patch> outbox_;  // not yet pushed
  bool pushing_ = false;
  bool sync_pending_ = false, sync_running_ = false, sync_crdt_ = false;
  std::int64_t sync_from_ = 0;
  int sync_limit_ = 0;
  google::protobuf::ListValue pull_changes_;  // a CRDT pull's pages so far

  // Frames to the client, and reading from it.
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
  // Reading pauses while patches wait to be pushed or while the client does
  // not read its frames: a flood waits in TCP, not in memory.
  bool wait_outbox_ = false;
  bool wait_queue_ = false;
  bool wait_rate_ = false;
  boost::beast::websocket::close_reason close_reason_;

  // Feed items handed over by the feed's thread, not yet taken by the
  // strand. One post drains all of them: under load a socket costs one
  // post per batch, not per patch. At queue_messages items the socket
  // stops taking the feed (skipping_) and later catches up from the log, so
  // a slow socket holds a bounded number.
  std::mutex inbox_mu_;
  boost::container::deque<upstream::Item> inbox_;  // guarded by inbox_mu_
  std::atomic<bool> skipping_{false};
};

}  // namespace bridge
