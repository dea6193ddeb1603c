#pragma once
// syncd assembled: the engine (committer, readers, head listener, hub), the
// database probe, the gRPC server with sync.v1.Sync, health and
// reflection, and /healthz and /readyz.
// main() only parses flags and calls run().

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "auth/jwt.h"
#include "auth/rate_limiter.h"
#include "engine/committer.h"
#include "engine/compactor.h"
#include "engine/presence.h"
#include "graph/check.h"
#include "server/channel_stream.h"
#include "server/stream_caps.h"

namespace syncd::server {

struct ServerOptions {
  std::string database_url;
  std::string grpc_listen = "0.0.0.0:50051";
  std::string http_listen = "0.0.0.0:8081";
  int read_threads = 2;
  // A database silent this long is treated as gone (see store/conninfo.h);
  // its health is probed this often.
  std::chrono::seconds database_dead_after{10};
  std::chrono::milliseconds database_probe_interval{1000};
  // HTTP/2 pings to a client idle this long; one that does not answer
  // within keepalive_timeout is dropped with its calls.
  std::chrono::seconds keepalive{20};
  std::chrono::seconds keepalive_timeout{10};
  std::size_t max_message_bytes = 4 << 20;  // any gRPC message received (a Push holds many patches)
  graph::Limits limits;
  StreamLimits stream;
  engine::CommitterOptions committer;
  engine::CompactorOptions compaction;
  engine::PresenceOptions presence;
  auth::VerifierOptions auth;  // no key: authentication off
  auth::RateLimits rate;
  StreamCapOptions caps;
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();

  // Binds both ports and starts serving. On error nothing is left running.
  absl::Status start();
  int grpc_port() const;
  int http_port() const;

  // Stops accepting, commits and answers what is queued, closes every
  // stream with UNAVAILABLE once its messages are written, and returns.
  void shut_down();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace syncd::server
