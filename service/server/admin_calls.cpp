// The calls that change a channel rather than its graph: settings,
// compaction, deletion; and GetSnapshot, which hands off to SnapshotCall.

#include "graph/graph.h"
#include "server/snapshot_call.h"
#include "server/sync_service.h"
#include "server/unary.h"

namespace syncd::server {
namespace {

// Far beyond any real need, small enough that no arithmetic on them overflows.
constexpr std::int64_t kMaxRetainVersions = std::int64_t{1} << 50;
constexpr std::int64_t kMaxRetainSeconds = std::int64_t{100} * 366 * 86400;

grpc::Status invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

}  // namespace

grpc::ServerUnaryReactor* SyncService::ConfigureChannel(grpc::CallbackServerContext* call,
                                                        const api::ConfigureChannelRequest* request,
                                                        api::ChannelInfo* response) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  const std::string channel = channel_or_default(request->channel());
  if (!admit(ctx_, call, reactor, channel, "write")) return reactor;
  store::ChannelSettings settings;
  if (!request->conflict_policy().empty()) {
    if (!graph::parse_conflict_policy(request->conflict_policy())) {
      reactor->Finish(invalid("conflict_policy must be \"last_writer_wins\" or \"reject_stale\" (or empty to keep it)"));
      return reactor;
    }
    settings.conflict_policy = request->conflict_policy();
  }
  if (request->has_retain_versions()) {
    if (request->retain_versions() < 0 || request->retain_versions() > kMaxRetainVersions) {
      reactor->Finish(invalid("retain_versions must be between 0 (keep all) and " + std::to_string(kMaxRetainVersions)));
      return reactor;
    }
    settings.retain_versions = request->retain_versions();
  }
  if (request->has_retain_seconds()) {
    if (request->retain_seconds() < 0 || request->retain_seconds() > kMaxRetainSeconds) {
      reactor->Finish(invalid("retain_seconds must be between 0 (keep all) and " + std::to_string(kMaxRetainSeconds) +
                              " (100 years)"));
      return reactor;
    }
    settings.retain_seconds = request->retain_seconds();
  }
  ctx_.readers.submit([this, reactor, response, channel, settings](store::ChangeLog& log) {
    auto state = log.configure(channel, settings);
    if (!state.ok()) {
      reactor->Finish(unavailable(state.status()));
      return;
    }
    fill_info(*state, ctx_, response);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* SyncService::Compact(grpc::CallbackServerContext* call, const api::CompactRequest* request,
                                               api::CompactResponse* response) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  const std::string channel = channel_or_default(request->channel());
  if (!admit(ctx_, call, reactor, channel, "write")) return reactor;
  if (request->through_version() < 0) {
    reactor->Finish(invalid("through_version must be >= 0"));
    return reactor;
  }
  ctx_.compactor.compact(channel, request->through_version(), request->force(),
                         [reactor, response](absl::StatusOr<store::CompactResult> result) {
                           if (result.ok()) {
                             response->set_compacted_through(result->compacted_through);
                             response->set_head_version(result->head);
                             reactor->Finish(grpc::Status::OK);
                             return;
                           }
                           const std::string why(result.status().message());
                           switch (result.status().code()) {
                             case absl::StatusCode::kNotFound:
                               return reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, why));
                             case absl::StatusCode::kOutOfRange:
                               return reactor->Finish(invalid(why + "; nothing was compacted"));
                             case absl::StatusCode::kFailedPrecondition:
                               return reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, why));
                             default:
                               return reactor->Finish(unavailable(result.status()));
                           }
                         });
  return reactor;
}

grpc::ServerUnaryReactor* SyncService::DeleteChannel(grpc::CallbackServerContext* call,
                                                     const api::DeleteChannelRequest* request,
                                                     api::DeleteChannelResponse* response) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  const std::string channel = channel_or_default(request->channel());
  if (!admit(ctx_, call, reactor, channel, "write")) return reactor;
  ctx_.readers.submit([this, reactor, response, channel](store::ChangeLog& log) {
    auto head = log.delete_channel(channel);
    if (!head.ok()) {
      reactor->Finish(unavailable(head.status()));
      return;
    }
    if (!head->has_value()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "no channel named " + channel));
      return;
    }
    // Other instances hear it from the database; this one at once.
    ctx_.hub.deleted(channel);
    response->set_head_version(**head);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerWriteReactor<api::SnapshotPage>* SyncService::GetSnapshot(grpc::CallbackServerContext* call,
                                                                       const api::GetSnapshotRequest* request) {
  return new SnapshotCall(ctx_, call, *request);
}

}  // namespace syncd::server
