#pragma once
// sync.v1.Sync on gRPC's callback API: no thread per call, and no handler
// ever waits on the database (commits go to the committer, reads to the
// reader pool, and the call finishes from there).
//
// The two streaming methods are registered raw (grpc::ByteBuffer in and
// out): a broadcast is encoded once for all subscribers and history pages
// are spliced from the log's stored bytes (server/wire.h). Clients see the
// same sync.v1 messages; reflection still describes them.

#include "api/grpc.h"
#include "server/context.h"

namespace syncd::server {

using CallbackBase = api::Sync::WithCallbackMethod_Push<api::Sync::WithCallbackMethod_GetChanges<
    api::Sync::WithCallbackMethod_GetChannelInfo<api::Sync::WithCallbackMethod_ConfigureChannel<
        api::Sync::WithCallbackMethod_GetSnapshot<api::Sync::WithCallbackMethod_Compact<
            api::Sync::WithCallbackMethod_DeleteChannel<api::Sync::WithRawCallbackMethod_Session<
                api::Sync::WithRawCallbackMethod_Watch<api::Sync::WithCallbackMethod_GetPresence<
                    api::Sync::WithCallbackMethod_Presence<api::Sync::Service>>>>>>>>>>>;

class SyncService final : public CallbackBase {
 public:
  explicit SyncService(Context& ctx) : ctx_(ctx) {}

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Session(grpc::CallbackServerContext* call) override;
  grpc::ServerUnaryReactor* Push(grpc::CallbackServerContext* call, const api::PushRequest* request,
                                 api::PushResponse* response) override;
  grpc::ServerUnaryReactor* GetChanges(grpc::CallbackServerContext* call,
                                       const api::GetChangesRequest* request,
                                       api::GetChangesResponse* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Watch(grpc::CallbackServerContext* call,
                                                    const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* GetChannelInfo(grpc::CallbackServerContext* call,
                                           const api::GetChannelInfoRequest* request,
                                           api::ChannelInfo* response) override;
  grpc::ServerUnaryReactor* ConfigureChannel(grpc::CallbackServerContext* call,
                                             const api::ConfigureChannelRequest* request,
                                             api::ChannelInfo* response) override;
  // admin_calls.cpp
  grpc::ServerWriteReactor<api::SnapshotPage>* GetSnapshot(grpc::CallbackServerContext* call,
                                                           const api::GetSnapshotRequest* request) override;
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* call, const api::CompactRequest* request,
                                    api::CompactResponse* response) override;
  grpc::ServerUnaryReactor* DeleteChannel(grpc::CallbackServerContext* call, const api::DeleteChannelRequest* request,
                                          api::DeleteChannelResponse* response) override;
  // presence_calls.cpp
  grpc::ServerUnaryReactor* GetPresence(grpc::CallbackServerContext* call, const api::GetPresenceRequest* request,
                                        api::PresenceList* response) override;
  grpc::ServerBidiReactor<api::PresenceRequest, api::PresenceEvent>* Presence(
      grpc::CallbackServerContext* call) override;

 private:
  Context& ctx_;
};

}  // namespace syncd::server
