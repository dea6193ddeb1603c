#pragma once
// sync.v1.Sync on gRPC's callback API: no thread per call, and no handler
// ever waits on the database (commits go to the committer, reads to the
// reader pool, and the call finishes from there).

#include "api/grpc.h"
#include "server/context.h"

namespace syncd::server {

class SyncService final : public api::Sync::CallbackService {
 public:
  explicit SyncService(Context& ctx) : ctx_(ctx) {}

  grpc::ServerBidiReactor<api::SessionRequest, api::SessionResponse>* Session(
      grpc::CallbackServerContext* call) override;
  grpc::ServerUnaryReactor* Push(grpc::CallbackServerContext* call, const api::PushRequest* request,
                                 api::PushResponse* response) override;
  grpc::ServerUnaryReactor* GetChanges(grpc::CallbackServerContext* call,
                                       const api::GetChangesRequest* request,
                                       api::GetChangesResponse* response) override;
  grpc::ServerWriteReactor<api::Patch>* Watch(grpc::CallbackServerContext* call,
                                              const api::WatchRequest* request) override;
  grpc::ServerUnaryReactor* GetChannelInfo(grpc::CallbackServerContext* call,
                                           const api::GetChannelInfoRequest* request,
                                           api::ChannelInfo* response) override;
  grpc::ServerUnaryReactor* ConfigureChannel(grpc::CallbackServerContext* call,
                                             const api::ConfigureChannelRequest* request,
                                             api::ChannelInfo* response) override;

 private:
  Context& ctx_;
};

}  // namespace syncd::server
