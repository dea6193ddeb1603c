#pragma once
// The unary sync.v1 calls the bridge makes on a socket's behalf, with the
// socket's own token, so syncd decides every read and write exactly as it
// would for a direct client.
//
// Each `done` runs once, on a gRPC thread: it must not block (post to a
// strand). Calls carry a deadline, so a stuck syncd ends them UNAVAILABLE or
// DEADLINE_EXCEEDED instead of leaving a socket waiting forever.

#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>
#include <vector>

#include "api/grpc.h"

namespace bridge::upstream {

template <class Response>
using Done = std::function<void(const grpc::Status&, Response&&)>;

// `authorization` is "Bearer <jwt>", or empty when the socket has no token.
void get_changes(api::Sync::Stub& stub, const std::string& authorization, api::GetChangesRequest request,
                 Done<api::GetChangesResponse> done);
void channel_info(api::Sync::Stub& stub, const std::string& authorization, api::GetChannelInfoRequest request,
                  Done<api::ChannelInfo> done);
void push(api::Sync::Stub& stub, const std::string& authorization, api::PushRequest request,
          Done<api::PushResponse> done);
// Every page of a GetSnapshot call (the channel's state, as large as it
// is), once the stream has ended.
void get_snapshot(api::Sync::Stub& stub, const std::string& authorization, api::GetSnapshotRequest request,
                  Done<std::vector<api::SnapshotPage>> done);

}  // namespace bridge::upstream
