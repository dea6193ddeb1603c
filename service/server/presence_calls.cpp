// GetPresence and the proxies' Presence stream (server/presence_call.h).
#include "server/presence_call.h"
#include "server/sync_service.h"
#include "server/unary.h"

namespace syncd::server {
namespace {

void fill_lag(api::PresenceList* list) {
  for (auto& m : *list->mutable_members()) {
    const std::int64_t at = m.applied_version() > 0 ? m.applied_version() : m.delivered_version();
    m.set_lag(std::max<std::int64_t>(0, list->head_version() - at));
  }
}

}  // namespace

grpc::ServerUnaryReactor* SyncService::GetPresence(grpc::CallbackServerContext* call,
                                                   const api::GetPresenceRequest* request,
                                                   api::PresenceList* response) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  const std::string channel = channel_or_default(request->channel());
  if (!admit(ctx_, call, reactor, channel, "read")) return reactor;
  ctx_.presence.list(channel, [reactor, response](absl::StatusOr<api::PresenceList> list) {
    if (!list.ok()) return reactor->Finish(unavailable(list.status()));
    *response = *std::move(list);
    fill_lag(response);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerBidiReactor<api::PresenceRequest, api::PresenceEvent>* SyncService::Presence(
    grpc::CallbackServerContext* call) {
  return new PresenceCall(ctx_, call);
}

}  // namespace syncd::server
