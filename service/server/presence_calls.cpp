// GetPresence and the proxies' Presence stream (server/presence_call.h).
#include "server/presence_call.h"
#include "server/sync_service.h"
#include "server/unary.h"

namespace syncd::server {

grpc::ServerUnaryReactor* SyncService::GetPresence(grpc::CallbackServerContext* call,
                                                   const api::GetPresenceRequest* request,
                                                   api::PresenceList* response) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  const std::string channel = channel_or_default(request->channel());
  if (!admit(ctx_, call, reactor, channel, "read")) return reactor;
  ctx_.presence.list(channel, [reactor, response](absl::StatusOr<api::PresenceList> list) {
    if (!list.ok()) return reactor->Finish(unavailable(list.status()));
    *response = *std::move(list);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerBidiReactor<api::PresenceRequest, api::PresenceEvent>* SyncService::Presence(
    grpc::CallbackServerContext* call) {
  return new PresenceCall(ctx_, call);
}

}  // namespace syncd::server
