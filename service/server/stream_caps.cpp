#include "server/stream_caps.h"

namespace syncd::server {

StreamCaps::StreamCaps(const StreamCapOptions& o)
    : sessions_(static_cast<std::size_t>(o.sessions_per_subject), o.uncapped_subjects),
      watches_(static_cast<std::size_t>(o.watches_per_subject), o.uncapped_subjects),
      addresses_(static_cast<std::size_t>(o.streams_per_address), o.uncapped_addresses) {}

std::variant<auth::KeyedCap::Hold, grpc::Status> StreamCaps::admit(Kind kind, const auth::Principal& who,
                                                                    const grpc::CallbackServerContext* call) {
  const char* what = kind == Kind::kSession ? "Session" : "Watch";
  if (who.authenticated()) {
    auth::KeyedCap& cap = kind == Kind::kSession ? sessions_ : watches_;
    if (auto hold = cap.take(who.subject)) return hold;
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "\"" + who.subject + "\" already has " + std::to_string(cap.limit()) + " " + what +
                            " streams open (--max-" + (kind == Kind::kSession ? "sessions" : "watches") +
                            "-per-subject); close one first");
  }
  const std::string address = peer_address(call->peer());
  if (auto hold = addresses_.take(address)) return hold;
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      address + " already has " + std::to_string(addresses_.limit()) +
                          " streams open (--max-streams-per-address); close one first");
}

std::string peer_address(std::string_view peer) {
  for (std::string_view scheme : {"ipv4:", "ipv6:"}) {
    if (peer.substr(0, scheme.size()) != scheme) continue;
    peer.remove_prefix(scheme.size());
    if (!peer.empty() && peer.front() == '[') {
      const auto close = peer.find(']');
      return std::string(peer.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
    }
    return std::string(peer.substr(0, peer.rfind(':')));
  }
  return std::string(peer);
}

}  // namespace syncd::server
