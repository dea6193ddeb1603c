#pragma once
// What the gRPC handlers share: the engine and the limits. Owned by
// server::Server; outlives every call.

#include <atomic>

#include "auth/jwt.h"
#include "auth/rate_limiter.h"
#include "engine/committer.h"
#include "engine/compactor.h"
#include "engine/hub.h"
#include "engine/presence.h"
#include "engine/reader_pool.h"
#include "graph/check.h"
#include "server/channel_stream.h"
#include "server/stream_caps.h"

namespace syncd::server {

class PresenceCalls;

struct Context {
  engine::Hub& hub;
  engine::Committer& committer;
  engine::ReaderPool& readers;
  engine::Compactor& compactor;
  engine::Presence& presence;
  graph::Limits limits;
  StreamLimits stream;
  std::atomic<bool>& stopping;  // set at shutdown: new calls are refused
  const auth::Verifier& verifier;
  auth::RateLimiter& limiter;
  StreamCaps& caps;
  PresenceCalls& presence_calls;  // open Presence streams, ended at shutdown
};

// The channel a request names: empty means "default".
inline std::string channel_or_default(const std::string& name) {
  return name.empty() ? std::string("default") : name;
}

}  // namespace syncd::server
