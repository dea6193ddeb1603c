#pragma once
// The Socket.IO v5 layer of one Engine.IO session: the default namespace's
// CONNECT (token, and connection state recovery from {pid, offset}), and
// the sync events of the Socket.IO sync demo:
//   sync:join {channel | userId, since?}      -> joins; ack {success, channel, timestamp}
//   sync:change change | [change, ...]        -> ack after commit (an array: one ack, an array)
//   sync:get_changes {channel | userId, since, limit?} -> ack {changes, latestTimestamp, hasMore}
//   sync:presence_subscribe / _request / _update, sync:applied {channel?, ...}
//                                            -> presence (socketio/sio_channel.h)
// and sync:changes / sync:reset / sync:error / sync:presence pushed to the client
// (dialect/socketio_encoder.h, codec/socketio_codec.h).
//
// Recovery keeps no state in the bridge: the offset names a channel and a
// version, so any bridge can resume the client there, and the pid the
// client presents is given back, which is what makes socket.io-client
// report `recovered`. A failure the client cannot fix by reconnecting (a
// token refused or expired, a channel forbidden or deleted) ends with a
// Socket.IO DISCONNECT, after which socket.io-client does not reconnect by
// itself; others end the session, and the client reconnects and recovers.
//
// On the session's strand.

#include <boost/json/value.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/keyed_cap.h"
#include "codec/engineio.h"
#include "socket/socket_upstream.h"
#include "socket/token_watch.h"
#include "socketio/ack_collector.h"
#include "socketio/handshake.h"
#include "socketio/sio_channel.h"

namespace bridge::socketio {

class EioSession;

class SioSocket {
 public:
  // Channels one socket may join, and joins that may fail, before it must reconnect.
  static constexpr std::size_t kMaxChannels = 16;
  // Changes one sync:change event may carry.
  static constexpr std::size_t kMaxBatch = 1000;

  SioSocket(EioSession& eio, Handshake handshake);
  ~SioSocket();

  void on_message(std::string_view data);  // one Socket.IO packet
  void drained();                           // the session's queue went under half its limit
  bool waiting() const;                     // something waits for drained()
  void stop();

  // For its channels.
  EioSession& eio() { return eio_; }
  AckCollector& acks() { return acks_; }
  delivery::Upstream& upstream() { return upstream_; }
  const std::string& authorization() const { return authorization_; }
  delivery::Post post();
  // An answer to the client's own packets, and a frame of delivery's (see EioSession::send).
  void send(dialect::Frame frame);
  void deliver(dialect::Frame frame);
  // Answers event `ack` with {success: false, error}, or sends a sync:error event when there is no ack.
  void refuse(std::optional<std::int64_t> ack, std::string_view code, std::string_view message,
              std::string_view channel = {});
  // --max-sockets-per-subject, counted once syncd has accepted the token.
  bool admit_subject();
  // Ends the session for `status`: with a DISCONNECT when reconnecting cannot help.
  void fail(const grpc::Status& status);

 private:
  void on_connect(const codec::SioPacket& packet);
  void on_event(const codec::SioPacket& packet);
  void join(const boost::json::value& args, std::optional<std::int64_t> ack);
  void change(const boost::json::value& payload, std::optional<std::int64_t> ack);
  void get_changes(const boost::json::value& args, std::optional<std::int64_t> ack);
  void open_channel(const std::string& name, std::optional<std::int64_t> since, std::optional<std::int64_t> ack,
                    bool recovering, std::string client_id, bool presence);
  // sync:presence_subscribe, _request, _update, sync:applied: answered {success: true} when asked.
  void presence(std::string_view name, const boost::json::value& args, std::optional<std::int64_t> ack);
  // The live channel a change goes to: its own, else the socket's only one.
  SioChannel* channel_for(const std::optional<std::string>& named, std::string* error);

  EioSession& eio_;
  Handshake handshake_;        // holds the address's place while the session lives
  std::string authorization_;  // the socket's token, as "Bearer <jwt>"; empty: none
  TokenWatch token_;
  SocketUpstream upstream_;
  AckCollector acks_;
  syncd::auth::KeyedCap::Hold subject_hold_;
  bool connected_ = false;
  bool stopped_ = false;
  bool reading_changes_ = false;  // a sync:get_changes is running
  std::map<std::string, std::unique_ptr<SioChannel>> channels_;
  // Channels whose join failed: kept (calls may still refer to them) until the socket ends.
  std::vector<std::unique_ptr<SioChannel>> failed_;
};

}  // namespace bridge::socketio
