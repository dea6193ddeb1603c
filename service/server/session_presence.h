#pragma once
// A Session's part in presence (engine/presence.h): its own entry, whose
// state the client sets and whose position (versions delivered and
// applied) is reported once a second; and, when the client opened with
// `presence: true`, the channel's presence as SessionResponse messages.
//
// Presence messages go through the stream's queue only while it has room
// (ChannelStream::offer): a client too slow to take them gets the whole
// list again once it has room, never an unbounded backlog.
//
// Thread-safe: on_presence runs on the presence thread, tick on the
// server's ticker, the rest on the call's reactor.

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "auth/client_text.h"
#include "engine/presence.h"
#include "graph/check.h"
#include "server/channel_stream.h"

namespace syncd::server {

using auth::client_id_error;        // auth/client_text.h
using graph::presence_state_error;  // graph/check.h

// Presence updates a connection may send: a burst of kBurst, then
// kPerSecond a second. The presence engine writes at most its own rate
// (the latest wins); beyond this one the sender is told to slow down.
class UpdateRate {
 public:
  static constexpr double kPerSecond = 50;
  static constexpr double kBurst = 50;
  bool admit();

 private:
  double tokens_ = kBurst;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

class SessionPresence final : public engine::PresenceWatcher,
                              public std::enable_shared_from_this<SessionPresence> {
 public:
  SessionPresence(engine::Presence& presence, std::string channel, std::string connection_id,
                  std::weak_ptr<ChannelStream> stream);

  const std::string& connection_id() const { return connection_id_; }
  void set_state(google::protobuf::Struct state) { presence_.set_state(channel_, connection_id_, std::move(state)); }
  void applied(std::int64_t version);
  // The stream has delivered up to `delivered`.
  void tick(std::int64_t delivered);
  // Starts the channel's presence events (unless the session has left).
  void watch();
  void leave();

  void on_presence(const std::string& channel, const std::shared_ptr<const api::PresenceList>& full,
                   const std::vector<engine::PresenceChange>& changes) override;

 private:
  engine::Presence& presence_;
  const std::string channel_;
  const std::string connection_id_;
  const std::weak_ptr<ChannelStream> stream_;
  std::atomic<std::int64_t> applied_{0};
  std::chrono::steady_clock::time_point last_resend_{};  // presence thread only
  std::mutex mu_;
  bool left_ = false;  // guarded by mu_
};

}  // namespace syncd::server
