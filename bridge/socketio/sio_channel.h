#pragma once
// One channel a Socket.IO client has joined: its Delivery, fed by the
// channel's shared feed, and the Sink that turns what it sends into the
// client's events (dialect/socketio_encoder.h) and acknowledgements.
//
// A join is answered once the client's history has been sent. A join that
// fails answers with the error (or a sync:error when it had no ack) and
// the channel stops; a channel that fails once live, or while recovering,
// ends the session (SioSocket::fail). Lives as long as its session (calls
// in flight refer to it). On the session's strand.

#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codec/socketio_codec.h"
#include "socket/socket_presence.h"
#include "delivery/delivery.h"
#include "delivery/feed_link.h"
#include "dialect/socketio_encoder.h"

namespace bridge::socketio {

class SioSocket;

// Each joined channel is also one presence member (transport "socketio"),
// and, when the join asked for presence, the channel's presence goes to
// the client as sync:presence events once its history has been sent.
class SioChannel final : private delivery::Sink, private SocketPresence::Client {
 public:
  // Joins of this channel waiting for their answer, at most.
  static constexpr std::size_t kMaxWaitingJoins = 16;

  // Joins from `since`, or from the head when there is none; `recovering`:
  // for connection state recovery, not at the client's request.
  SioChannel(SioSocket& socket, std::string channel, std::optional<std::int64_t> since, bool recovering);
  ~SioChannel() override;

  // The name this socket is listed under in the channel's presence (only
  // before start()), and whether the client wants the channel's presence.
  void set_presence(std::optional<std::string> client_id, bool want);
  // Subscribes to the feed; `ack`, when set, answers the join.
  void start(std::optional<std::int64_t> ack);
  // sync:presence_subscribe, _request, _update and sync:applied; the error
  // (code, message) to answer when refused.
  std::optional<std::pair<std::string, std::string>> presence_event(codec::PresenceEvent& event);
  // Another join of this channel: answered now if the first one was.
  void rejoin(std::optional<std::int64_t> ack);
  void stop();

  bool usable() const { return !failed_; }
  bool live() const { return live_; }
  delivery::Delivery& delivery() { return *delivery_; }

 private:
  std::size_t backlog() const override;
  bool admitted() override;
  void joined(const api::ChannelInfo& info) override;
  void page(api::SyncState& state, bool continues) override;
  void deliver(const Sequencer::Out& out) override;
  void request_failed(const grpc::Status& status) override;
  void failed(const grpc::Status& status) override;
  void outbox_room() override {}

  // SocketPresence::Client
  void presence_frame(presence::Frame frame) override;
  void presence_error(const std::string& code, const std::string& message) override;
  // Once a second while presence is on: held-back positions, and the whole
  // list again after frames were dropped.
  void tick();

  void answer_joins(std::int64_t version);

  SioSocket& socket_;
  const bool recovering_;
  dialect::SocketIoEncoder encoder_;
  std::optional<delivery::Delivery> delivery_;
  std::optional<delivery::FeedLink> link_;
  std::unique_ptr<upstream::Subscription> feed_;
  std::shared_ptr<SocketPresence> presence_;  // null when the bridge has no presence link
  std::string client_id_;                     // the name it is listed under (may be empty)
  boost::asio::steady_timer tick_timer_;
  std::vector<std::int64_t> join_acks_;  // joins to answer once the history is sent
  bool live_ = false;
  bool failed_ = false;
  bool counted_ = false;  // in the bridge's /stats, as one socket on the channel
  bool stopped_ = false;
};

}  // namespace bridge::socketio
