#pragma once
// The Watch RPC: every patch of a channel after a version, then live ones,
// as a server stream of Patch messages. Same delivery as Session (see
// channel_stream.h), without pages, acks or idle timeout.

#include <grpcpp/grpcpp.h>

#include "api/grpc.h"
#include "server/context.h"

namespace syncd::server {

class WatchCall final : public grpc::ServerWriteReactor<grpc::ByteBuffer>, public ChannelStream::Writer {
 public:
  // `request` is an encoded WatchRequest.
  WatchCall(Context& ctx, grpc::CallbackServerContext* call, const grpc::ByteBuffer& request);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  void start_write(const grpc::ByteBuffer& msg) override { StartWrite(&msg); }
  void finish(const grpc::Status& status) override { Finish(status); }
  void resume_reading() override {}

 private:
  Context& ctx_;
  std::shared_ptr<ChannelStream> stream_;
  auth::KeyedCap::Hold place_;  // one of the caller's Watch places (server/stream_caps.h)
};

}  // namespace syncd::server
