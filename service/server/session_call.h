#pragma once
// The Session RPC: one bidirectional stream on one channel.
//
// Client messages are read one at a time: the first must be `open`; each
// patch is shape-checked here (a malformed one is answered with a rejected
// ack, never stored) and handed to the committer. Reading pauses while the
// session has `unacked_patches` patches in flight or as many messages queued,
// so a client that writes without reading cannot grow the server's memory.

#include <grpcpp/grpcpp.h>

#include "api/grpc.h"
#include "auth/principal.h"
#include "server/context.h"
#include "server/session_presence.h"

namespace syncd::server {

class SessionCall final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
                          public ChannelStream::Writer {
 public:
  SessionCall(Context& ctx, grpc::CallbackServerContext* call);

  // grpc::ServerBidiReactor
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // ChannelStream::Writer
  void start_write(const grpc::ByteBuffer& msg) override { StartWrite(&msg); }
  void finish(const grpc::Status& status) override { Finish(status); }
  void resume_reading() override { StartRead(&encoded_); }

 private:
  void open(const api::OpenChannel& open);
  void refresh(const std::string& token);
  void refuse_unopened();
  void submit(api::Patch patch);
  void send_error(const std::string& code, const std::string& message);
  // Joins the channel's presence; false (and the stream closing) when the
  // open asks for something it may not have.
  bool join_presence(const std::string& channel, const api::OpenChannel& open);
  void update_presence(const api::PresenceUpdate& update);

  Context& ctx_;
  std::shared_ptr<ChannelStream> stream_;
  grpc::ByteBuffer encoded_;     // only touched by the read in flight
  api::SessionRequest request_;  // decoded from it in OnReadDone
  bool opened_ = false;          // only touched by OnReadDone (reads are serial)
  auth::Principal principal_;    // likewise; replaced by refresh
  auth::KeyedCap::Hold place_;   // one of the caller's Session places (server/stream_caps.h)
  std::shared_ptr<SessionPresence> presence_;  // set once opened
  UpdateRate update_rate_;                     // presence updates; touched by OnReadDone only
};

}  // namespace syncd::server
