#pragma once
// Who a socket's token names and when it expires, read from the JWT's
// payload without checking its signature: syncd verifies the token on every
// call the bridge makes with it, so the bridge only needs these two claims
// to close the socket at expiry and to keep a refresh to the same subject.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace bridge {

struct TokenClaims {
  std::string subject;                                         // `sub`
  std::optional<std::chrono::system_clock::time_point> expires;  // `exp`
};

// `authorization` is "Bearer <jwt>" or a bare JWT; nullopt when it is not a
// JWT with a JSON object payload.
std::optional<TokenClaims> read_claims(std::string_view authorization);

}  // namespace bridge
