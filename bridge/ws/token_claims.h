#pragma once
// Who a socket's token names and when it expires, read from the JWT's
// payload without checking its signature: syncd verifies the token on every
// call the bridge makes with it, so the bridge only needs these two claims
// to close the socket at expiry and to keep a refresh to the same subject.
// The token's syntax and its time claims pass the same checks as in syncd
// (auth/token_format.h), so both refuse the same tokens.

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
// JWT with a JSON object payload whose exp, nbf and iat, where present, are
// NumericDates in range.
std::optional<TokenClaims> read_claims(std::string_view authorization);

}  // namespace bridge
