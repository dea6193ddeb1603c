#pragma once
// The Presence RPC: how a proxy that holds client connections itself
// (sync-bridge) puts them in presence and hears the channels it watches.
//
// Each `connect` names one client connection on one channel; with
// authentication on it carries that client's own token, which must allow
// reading the channel and names the member's subject, so a proxy cannot
// make up members. `watch` needs the stream's own token to read the
// channel. Every connection of the stream leaves when it ends, however it
// ends: a proxy that dies leaves no ghost (its TCP connection closes, or
// keepalive pings find it gone).
//
// Events are queued up to kMaxQueued; a proxy too slow to read them gets
// the channel's whole list again once it has room.

#include <grpcpp/grpcpp.h>

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "api/grpc.h"
#include "auth/principal.h"
#include "server/context.h"

namespace syncd::server {

class PresenceCall;

// The open Presence streams, so that shutdown ends them (gRPC would wait
// for them otherwise). Thread-safe.
class PresenceCalls {
 public:
  // False once shutdown began: the call must end.
  bool add(PresenceCall* call);
  void remove(PresenceCall* call);
  // Each stream finishes UNAVAILABLE once what is queued is written.
  void shut_down();

 private:
  std::mutex mu_;
  std::set<PresenceCall*> calls_;  // guarded by mu_
  bool stopping_ = false;          // guarded by mu_
};

class PresenceCall final : public grpc::ServerBidiReactor<api::PresenceRequest, api::PresenceEvent> {
 public:
  PresenceCall(Context& ctx, grpc::CallbackServerContext* call);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

  // Ends the stream UNAVAILABLE (the server is stopping).
  void shut_down();

  static constexpr std::size_t kMaxQueued = 4096;
  static constexpr std::size_t kMaxConnections = 100'000;
  static constexpr std::size_t kMaxWatched = 10'000;

 private:
  class Outbox;

  void handle(const api::PresenceRequest& request);
  void connect(const api::PresenceConnect& c);
  // The stream-wide id of a proxy's connection, or null (and an error
  // sent) when the proxy has not connected it.
  const std::string* find(const std::string& channel, const std::string& connection_id);
  void error(const std::string& channel, const std::string& connection_id, const std::string& code,
             const std::string& message);

  Context& ctx_;
  std::string prefix_;  // of this proxy's connection ids: "<its token's subject>/"
  std::shared_ptr<Outbox> outbox_;
  auth::Principal principal_;  // the proxy's
  auth::KeyedCap::Hold place_;  // one of its subject's stream places (as a Watch)
  // Touched by OnReadDone only (reads are serial) and OnDone.
  api::PresenceRequest request_;
  std::map<std::pair<std::string, std::string>, std::string> connections_;  // (channel, proxy's id) -> id
  std::set<std::string> watched_;
};

}  // namespace syncd::server
