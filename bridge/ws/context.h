#pragma once
// What every socket shares; owned by main(), outlives all sessions.

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "api/grpc.h"
#include "upstream/feed.h"
#include "ws/stats.h"

namespace bridge {

struct BridgeLimits {
  std::size_t max_frame_bytes = 1 << 20;  // larger frames: close 1009
  std::size_t queue_messages = 1024;      // per socket; beyond it, the socket falls behind
  std::chrono::seconds idle_timeout{60};  // client silence (any frame, ping or pong counts)
};

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
  std::set<std::weak_ptr<WsSession>, std::owner_less<std::weak_ptr<WsSession>>> sessions_;  // guarded by mu_
};

struct BridgeContext {
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<api::Sync::Stub> stub;   // unary calls made for sockets (upstream/calls.h)
  std::unique_ptr<upstream::Feeds> feeds;  // one shared Watch per channel
  Stats stats;
  Sessions sessions;
  BridgeLimits limits;
  std::atomic<bool> stopping{false};
};

}  // namespace bridge
