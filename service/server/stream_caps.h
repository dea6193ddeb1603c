#pragma once
// Caps on the streams one client holds open, so that no client can pin the
// server's memory: Sessions and Watches per token subject, and, for callers
// without a subject (authentication off), both together per IP address.
// A sync-bridge holds one Watch per channel for all its sockets: its
// subject or address is listed as uncapped. Thread-safe.

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "auth/keyed_cap.h"
#include "auth/principal.h"

namespace syncd::server {

struct StreamCapOptions {
  int sessions_per_subject = 100;   // --max-sessions-per-subject; 0: no limit
  int watches_per_subject = 100;    // --max-watches-per-subject
  int streams_per_address = 1000;   // --max-streams-per-address, callers without a subject
  std::vector<std::string> uncapped_subjects;   // --uncapped-subject
  std::vector<std::string> uncapped_addresses;  // --uncapped-address
};

class StreamCaps {
 public:
  enum class Kind { kSession, kWatch };
  explicit StreamCaps(const StreamCapOptions& options);

  // A place for one more stream of `who` (by subject, or by the caller's
  // address without one), or the RESOURCE_EXHAUSTED status to end it with.
  std::variant<auth::KeyedCap::Hold, grpc::Status> admit(Kind kind, const auth::Principal& who,
                                                          const grpc::CallbackServerContext* call);

 private:
  auth::KeyedCap sessions_;
  auth::KeyedCap watches_;
  auth::KeyedCap addresses_;
};

// The IP address in a gRPC peer string: "ipv4:10.0.0.1:5000" -> "10.0.0.1",
// "ipv6:[::1]:5000" -> "::1"; anything else as it is.
std::string peer_address(std::string_view peer);

}  // namespace syncd::server
