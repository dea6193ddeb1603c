#pragma once
// What every socket shares; owned by main(), outlives all sessions.

#include <grpcpp/generic/generic_stub.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "api/grpc.h"
#include "ws/broadcast_cache.h"
#include "ws/stats.h"

namespace bridge {

struct BridgeLimits {
  std::size_t max_frame_bytes = 1 << 20;  // larger frames: close 1009
  std::size_t queue_messages = 1024;      // per socket; beyond it, syncd is not read
  std::chrono::seconds idle_timeout{60};  // client silence (any frame, ping or pong counts)
  std::chrono::seconds upstream_heartbeat{20};
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
  std::unique_ptr<grpc::GenericStub> stub;  // raw sync.v1.Sync/Session streams (upstream/)
  Stats stats;
  BroadcastCache cache;
  Sessions sessions;
  BridgeLimits limits;
  std::atomic<bool> stopping{false};
};

}  // namespace bridge
