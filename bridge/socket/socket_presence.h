#pragma once
// One client socket's part in presence, whatever its protocol: its member
// entry (see join()), its state updates
// (checked and rate-limited here), its position, and the channel's
// presence frames when the client asked for them, which start once its
// history has been sent.
//
// Everything runs on the socket's strand except the Listener callbacks,
// which post to it.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "delivery/feed_link.h"
#include "presence/presence_link.h"

namespace bridge {

class SocketPresence final : public presence::Listener, public std::enable_shared_from_this<SocketPresence> {
 public:
  // What the socket does with presence frames and refusals (on its strand).
  class Client {
   public:
    virtual ~Client() = default;
    virtual void presence_frame(presence::Frame frame) = 0;
    virtual void presence_error(const std::string& code, const std::string& message) = 0;
  };

  SocketPresence(presence::PresenceLink& link, std::string channel, delivery::Post post, Client* client);

  // The socket joins presence (once: later calls do nothing). Called as
  // the socket opens without authentication, else once syncd has accepted
  // its token (BridgeContext::list_at_open); a state set before is sent
  // with the entry.
  void join(const std::string& client_id, const std::string& transport, const std::string& authorization);
  // syncd has accepted the socket (its first history answer): a refusal of
  // its entry reaches the client from now on. One that came earlier is
  // held until then, and dropped with the socket if it is refused anyway,
  // so a bad token gets one error, not two.
  void admitted();
  // The client wants the channel's presence (?presence=1 or presence_subscribe).
  void want();
  // The socket's history has been sent: wanted presence starts now.
  void history_sent();
  // presence_request: the whole list, now (within a second when asked
  // more often).
  void request();
  // presence_update; an error (code, message) for the client when refused.
  std::optional<std::pair<std::string, std::string>> update(google::protobuf::Struct state);
  void applied(std::int64_t version);
  // A version was sent to the client; reported at most once a second.
  void delivered(std::int64_t version);
  // Once a second: reports a held-back position; resends the list if
  // frames were lost.
  void tick(std::int64_t delivered);
  // Frames were dropped (the client does not read): the whole list
  // follows at the next tick.
  void lost() { lost_ = true; }
  void leave();

  // presence::Listener
  void on_presence_frames(presence::Frames frames) override;
  void on_presence_error(const std::string& code, const std::string& message) override;

 private:
  void subscribe();
  void refused(const std::string& code, const std::string& message);  // on the strand
  // Reports the position: throttled to once a second, or (`now_or_never`)
  // only what is due.
  void report(bool now_or_never);

  presence::PresenceLink& link_;
  const std::string channel_;
  const delivery::Post post_;
  Client* const client_;  // outlives every posted function (post_ keeps it alive)
  std::string id_;        // set by join()
  bool wanted_ = false;
  bool history_sent_ = false;
  bool subscribed_ = false;
  bool lost_ = false;
  bool admitted_ = false;
  std::unique_ptr<google::protobuf::Struct> early_state_;  // set before join(): sent with the entry (rare: kept out of line)
  std::unique_ptr<std::pair<std::string, std::string>> held_error_;  // a refusal before admitted() (rare: out of line)
  std::int64_t applied_ = 0;
  std::int64_t delivered_ = 0;
  std::chrono::steady_clock::time_point reported_{};
  std::chrono::steady_clock::time_point requested_{};  // the last whole list asked of the link
  bool report_due_ = false;  // a position not yet reported
  // presence_update: a burst of 20, then 20 a second.
  double tokens_ = 20;
  std::chrono::steady_clock::time_point refill_ = std::chrono::steady_clock::now();
};

}  // namespace bridge
