#include "server/unary.h"

#include "server/caller.h"

namespace syncd::server {

std::optional<auth::Principal> admit(Context& ctx, grpc::CallbackServerContext* call,
                                     grpc::ServerUnaryReactor* reactor, const std::string& channel,
                                     const char* verb) {
  auto who = admit_call(ctx, call, channel, verb);
  if (auto* status = std::get_if<grpc::Status>(&who)) {
    reactor->Finish(*status);
    return std::nullopt;
  }
  return std::get<auth::Principal>(std::move(who));
}

grpc::Status unavailable(const absl::Status& st) {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "the database is unavailable (" + std::string(st.message()) + "); retry");
}

void fill_info(const store::ChannelState& state, const Context& ctx, api::ChannelInfo* out) {
  out->set_channel(state.channel);
  out->set_head_version(state.head);
  out->set_patch_count(state.head - state.compacted_through);
  out->set_connected_clients(ctx.hub.subscriber_count(state.channel));
  out->set_conflict_policy(state.conflict_policy);
  out->set_server_id(state.server_id);
  out->set_compacted_through(state.compacted_through);
  const store::Retention& defaults = ctx.compactor.options().defaults;
  out->set_retain_versions(state.retain_versions.value_or(defaults.versions));
  out->set_retain_seconds(state.retain_seconds.value_or(defaults.seconds));
}

}  // namespace syncd::server
