#include "server/sync_service.h"

#include <mutex>

#include "graph/graph.h"
#include "server/caller.h"
#include "server/session_call.h"
#include "server/unary.h"
#include "server/watch_call.h"

namespace syncd::server {
namespace {

constexpr int kMaxPushPatches = 1000;

}  // namespace


grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* SyncService::Session(
    grpc::CallbackServerContext* call) {
  return new SessionCall(ctx_, call);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* SyncService::Watch(grpc::CallbackServerContext* call,
                                                               const grpc::ByteBuffer* request) {
  return new WatchCall(ctx_, call, *request);
}

grpc::ServerUnaryReactor* SyncService::Push(grpc::CallbackServerContext* call,
                                            const api::PushRequest* request,
                                            api::PushResponse* response) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  const std::string channel = channel_or_default(request->channel());
  auto who = admit(ctx_, call, reactor, channel, "write");
  if (!who) return reactor;
  if (request->patches_size() > kMaxPushPatches) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "at most " + std::to_string(kMaxPushPatches) +
                                     " patches per Push; split the request"));
    return reactor;
  }

  // Acks arrive on the channel's committer thread; the last one finishes the call.
  struct Pending {
    std::mutex mu;
    int outstanding;
    absl::Status failure;
    grpc::ServerUnaryReactor* reactor;
    api::PushResponse* response;
    void done() {
      if (--outstanding > 0) return;
      if (failure.ok()) {
        for (const api::Ack& ack : response->acks()) engine::count_ack(ack);
      }
      reactor->Finish(failure.ok() ? grpc::Status::OK
                                   : grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                                  "a commit's outcome is unknown; resend the same "
                                                  "patches (duplicates are answered `ignored`)"));
    }
  };
  auto pending = std::make_shared<Pending>();
  pending->outstanding = request->patches_size() + 1;  // +1 until every patch is handed over
  pending->reactor = reactor;
  pending->response = response;
  for (int i = 0; i < request->patches_size(); ++i) response->add_acks();

  for (int i = 0; i < request->patches_size(); ++i) {
    api::Patch patch = request->patches(i);
    auto rejection = admit_patch(ctx_, *who, channel, patch);
    if (!rejection) rejection = graph::check_shape(patch, ctx_.limits);
    if (rejection) {
      std::lock_guard lock(pending->mu);
      *response->mutable_acks(i) = engine::refused(patch, rejection->code, rejection->reason);
      pending->done();
      continue;
    }
    patch.clear_server_version();
    ctx_.committer.submit(store::Submission{channel, std::move(patch)}, 0,
                          [pending, i](const api::Ack& ack, const absl::Status& status) {
                            std::lock_guard lock(pending->mu);
                            *pending->response->mutable_acks(i) = ack;
                            if (!status.ok()) pending->failure = status;
                            pending->done();
                          });
  }
  std::lock_guard lock(pending->mu);
  pending->done();
  return reactor;
}

grpc::ServerUnaryReactor* SyncService::GetChanges(grpc::CallbackServerContext* call,
                                                  const api::GetChangesRequest* request,
                                                  api::GetChangesResponse* response) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  const std::string channel = channel_or_default(request->channel());
  if (!admit(ctx_, call, reactor, channel, "read")) return reactor;
  if (request->from_version() < 0 || request->limit() < 0) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "from_version and limit must be >= 0"));
    return reactor;
  }
  const std::size_t limit =
      request->limit() == 0 ? ctx_.stream.page_patches
                            : std::min<std::size_t>(request->limit(), ctx_.stream.page_patches);
  ctx_.readers.submit([reactor, response, channel, from = request->from_version(), limit,
                       bytes = ctx_.stream.page_bytes](store::ChangeLog& log) {
    auto page = log.read(channel, from, limit, bytes);
    if (!page.ok()) {
      reactor->Finish(unavailable(page.status()));
      return;
    }
    if (page->compacted(from)) {
      reactor->Finish(grpc::Status(
          grpc::StatusCode::OUT_OF_RANGE,
          "versions up to " + std::to_string(page->compacted_through) + " were compacted; the log starts at " +
              std::to_string(page->compacted_through + 1) +
              ": read the state with GetSnapshot, then GetChanges from its version"));
      return;
    }
    for (const auto& p : page->patches) {
      if (!p.decode(response->add_patches())) {
        reactor->Finish(grpc::Status(grpc::StatusCode::DATA_LOSS, "the patch at version " +
                                     std::to_string(p.version) + " does not decode"));
        return;
      }
    }
    response->set_version(page->patches.empty() ? std::min(from, page->head) : page->patches.back().version);
    response->set_has_more(page->has_more);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* SyncService::GetChannelInfo(grpc::CallbackServerContext* call,
                                                      const api::GetChannelInfoRequest* request,
                                                      api::ChannelInfo* response) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  const std::string channel = channel_or_default(request->channel());
  if (!admit(ctx_, call, reactor, channel, "read")) return reactor;
  ctx_.readers.submit([this, reactor, response, channel](store::ChangeLog& log) {
    auto state = log.channel_state(channel);
    if (!state.ok()) {
      reactor->Finish(unavailable(state.status()));
      return;
    }
    fill_info(*state, ctx_, response);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace syncd::server
