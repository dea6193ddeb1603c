#pragma once
// What the unary handlers share: admission and the answers they build.

#include <grpcpp/grpcpp.h>

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "auth/principal.h"
#include "server/context.h"

namespace syncd::server {

// Finishes the call with the reason unless it is admitted (see admit_call
// in caller.h); the caller's principal otherwise.
std::optional<auth::Principal> admit(Context& ctx, grpc::CallbackServerContext* call,
                                     grpc::ServerUnaryReactor* reactor, const std::string& channel,
                                     const char* verb);

// UNAVAILABLE for a failed database call, saying why.
grpc::Status unavailable(const absl::Status& st);

// ChannelInfo for `state`, with this instance's connection count and the
// retention in effect (the channel's own, or the server's defaults).
void fill_info(const store::ChannelState& state, const Context& ctx, api::ChannelInfo* out);

}  // namespace syncd::server
