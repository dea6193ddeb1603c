#pragma once
// Who is calling and what they may do: the checks every handler makes
// before it touches a channel.
//
// Authentication reads the call's `authorization` metadata once; the
// principal is then checked on every channel a call opens (read) and on
// every patch it sends (write, clientId, rate). A refused call gets
// UNAUTHENTICATED or PERMISSION_DENIED; a refused patch gets a rejected ack
// (`forbidden`, `rate_limited`); nothing refused is stored.

#include <grpcpp/grpcpp.h>

#include <optional>
#include <string>
#include <variant>

#include "auth/principal.h"
#include "graph/rejection.h"
#include "server/context.h"

namespace syncd::server {

// The principal of the call, or the UNAUTHENTICATED status to finish it with.
std::variant<auth::Principal, grpc::Status> authenticate(const Context& ctx,
                                                         const grpc::CallbackServerContext* call);
// Verifies a token sent in-band (Session `refresh`).
std::variant<auth::Principal, grpc::Status> authenticate_token(const Context& ctx, const std::string& token);

// A call on `channel` that needs `verb` ("read", "write"): the caller's
// principal, or the status to finish the call with (the server is
// stopping, the channel name is bad, the token is bad or does not allow it).
std::variant<auth::Principal, grpc::Status> admit_call(const Context& ctx, const grpc::CallbackServerContext* call,
                                                       const std::string& channel, const char* verb);

// PERMISSION_DENIED for `verb` ("read", "write") on `channel`.
grpc::Status forbidden(const auth::Principal& who, const char* verb, const std::string& channel);

// A patch's admission: write permission on `channel`, clientId equal to the
// subject (filled in when empty), then the subject's rate limits. nullopt
// when the patch may go to the committer. With authentication off there is
// no subject: clientIds are self-declared, so nothing is limited.
std::optional<graph::Rejection> admit_patch(Context& ctx, const auth::Principal& who, const std::string& channel,
                                            api::Patch& patch);

}  // namespace syncd::server
