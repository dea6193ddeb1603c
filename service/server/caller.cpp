#include "server/caller.h"

#include <spdlog/spdlog.h>

#include "auth/token_format.h"
#include "graph/check.h"
#include "observe/metrics.h"

namespace syncd::server {

std::variant<auth::Principal, grpc::Status> authenticate_token(const Context& ctx, const std::string& token) {
  auto result = ctx.verifier.verify(token);
  if (auto* error = std::get_if<auth::AuthError>(&result)) {
    // Named by its fingerprint: a token, even a refused one, never reaches the log.
    spdlog::debug("refused {}: {}", auth::token_fingerprint(token), error->message);
    observe::Metrics::get().auth_failed(error->reason);
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, error->message);
  }
  return std::get<auth::Principal>(std::move(result));
}

std::variant<auth::Principal, grpc::Status> authenticate(const Context& ctx,
                                                         const grpc::CallbackServerContext* call) {
  if (!ctx.verifier.enabled()) return auth::Principal::anonymous();
  const auto& md = call->client_metadata();
  auto it = md.find("authorization");
  return authenticate_token(ctx, it == md.end() ? std::string() : std::string(it->second.data(), it->second.size()));
}

std::variant<auth::Principal, grpc::Status> admit_call(const Context& ctx, const grpc::CallbackServerContext* call,
                                                       const std::string& channel, const char* verb) {
  if (ctx.stopping) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down; retry");
  if (!graph::valid_channel_name(channel)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "channel names are 1-128 characters of [A-Za-z0-9._:-]");
  }
  auto who = authenticate(ctx, call);
  if (auto* principal = std::get_if<auth::Principal>(&who)) {
    const bool allowed = std::string_view(verb) == "read" ? principal->can_read(channel) : principal->can_write(channel);
    if (!allowed) return forbidden(*principal, verb, channel);
  }
  return who;
}

grpc::Status forbidden(const auth::Principal& who, const char* verb, const std::string& channel) {
  observe::Metrics::get().auth_failed("forbidden");
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      "the token of \"" + who.subject + "\" may not " + verb + " channel \"" + channel +
                          "\" (its sync." + verb + " claim names no pattern that matches)");
}

std::optional<graph::Rejection> admit_patch(Context& ctx, const auth::Principal& who, const std::string& channel,
                                            api::Patch& patch) {
  if (!who.can_write(channel)) {
    return graph::Rejection{"forbidden", "the token of \"" + who.subject + "\" may not write channel \"" +
                                             channel + "\""};
  }
  if (!who.authenticated()) return std::nullopt;  // no subject to limit: authentication is off
  if (patch.client_id().empty()) patch.set_client_id(who.subject);
  if (patch.client_id() != who.subject) {
    return graph::Rejection{"forbidden", "clientId must be the token's subject \"" + who.subject + "\""};
  }
  const std::string& subject = who.subject;
  if (!ctx.limiter.admit_patch(subject, patch.ByteSizeLong())) {
    observe::Metrics::get().rate_limited.Increment();
    const auto& l = ctx.limiter.limits();
    return graph::Rejection{"rate_limited", "over the limit of " + std::to_string(static_cast<long>(l.patches_per_second)) +
                                                " patches/s or " + std::to_string(static_cast<long>(l.bytes_per_second)) +
                                                " bytes/s for \"" + subject + "\"; slow down and resend"};
  }
  return std::nullopt;
}

}  // namespace syncd::server
