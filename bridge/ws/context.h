#pragma once
// What every socket shares; owned by main(), outlives all sessions.

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "api/grpc.h"
#include "codec/json_parse.h"
#include "presence/presence_link.h"
#include "upstream/feed.h"
#include "auth/keyed_cap.h"
#include "ws/stats.h"
#include "socketio/registry.h"

namespace bridge {

// Every limit on what a client may make the bridge do; each is a flag
// (cli/main.cpp) and is listed in the README's Security section.
struct BridgeLimits {
  std::size_t max_frame_bytes = 1 << 20;  // larger frames: close 1009
  std::size_t queue_messages = 1024;      // per socket; beyond it, the socket falls behind
  std::chrono::seconds idle_timeout{60};  // client silence (any frame, ping or pong counts)
  codec::ParseLimits parse;               // every client frame, both dialects
  // Bytes per second one socket's frames may make the bridge parse (a frame
  // counts at least kMinFrameCost); a faster sender is read more slowly,
  // so no socket holds an I/O thread for long. 0: no limit.
  std::size_t read_bytes_per_second = 1 << 20;
  std::size_t sockets_per_address = 1024;  // open WebSockets from one IP address; 0: no limit
  std::size_t sockets_per_subject = 100;  // open WebSockets of one token subject; 0: no limit
  std::chrono::seconds header_timeout{30};  // to send a whole HTTP request head
  std::size_t max_header_bytes = 16 << 10;  // an HTTP request head (the token may ride in the URL)
};

// What a frame costs against read_bytes_per_second, however short.
inline constexpr std::size_t kMinFrameCost = 256;

class WsSession;

// Open sockets, for shutdown.
class Sessions {
 public:
  void add(const std::shared_ptr<WsSession>& s);
  void remove(const WsSession* s);
  // Closes every socket with 1001 (going away).
  void close_all();

 private:
  std::mutex mu_;
  // By address, so that a closing socket (which has no shared_ptr to itself
  // left) is removed in O(1).
  std::unordered_map<const WsSession*, std::weak_ptr<WsSession>> sessions_;  // guarded by mu_
};

struct BridgeContext {
  explicit BridgeContext(BridgeLimits l)
      : limits(l), per_address(l.sockets_per_address), per_subject(l.sockets_per_subject) {}

  const BridgeLimits limits;
  syncd::auth::KeyedCap per_address;
  syncd::auth::KeyedCap per_subject;
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<api::Sync::Stub> stub;   // unary calls made for sockets (upstream/calls.h)
  std::unique_ptr<upstream::Feeds> feeds;  // one shared Watch per channel
  std::unique_ptr<socketio::Registry> socketio;  // Engine.IO sessions by sid
  std::unique_ptr<presence::PresenceLink> presence;  // every socket's presence, one stream to syncd
  // No token of the bridge's own: syncd runs without authentication, so a
  // socket joins presence as it opens. With a token, a socket joins once
  // syncd has accepted its own (its first history answer), so a refused
  // token is never listed, refused twice, or counted twice.
  bool list_at_open = false;
  Stats stats;
  Sessions sessions;
  std::atomic<bool> stopping{false};
};

}  // namespace bridge
