#pragma once
// Turns a bearer token into a Principal, or says exactly why it cannot.
//
// Tokens are JWTs verified with cpp-jwt: HS256/384/512 with a shared secret,
// or RS256/384/512 and ES256/384/512 with a PEM public key. Only the family
// of the configured key is accepted, so `alg: none` and the HS256-with-a-
// public-key confusion are refused. `exp` and `nbf` are checked with a small
// leeway; `iss` and `aud` when configured. Claims:
//
//   { "sub": "user-42", "exp": 1767225600,
//     "sync": { "read": ["lobby", "user-42:*"], "write": ["user-42:*"] } }
//
// With no key configured, authentication is off and every call is the
// anonymous principal. Nothing here throws; verify() is thread-safe.
//
// This is the only file that includes cpp-jwt (its implementation is not
// header-safe across translation units), so signing lives here too.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "absl/status/statusor.h"
#include "auth/principal.h"

namespace syncd::auth {

struct VerifierOptions {
  std::string secret;          // HS* shared secret (bytes of --jwt-secret-file)
  std::string public_key_pem;  // RS*/ES* public key (--jwt-public-key-file)
  std::string issuer;          // required `iss` when not empty
  std::string audience;        // required in `aud` (a string or a list) when not empty
  std::chrono::seconds leeway{30};  // clock skew allowed on exp and nbf
};

// Why a token was refused: a sentence for the caller (UNAUTHENTICATED).
struct AuthError {
  std::string message;  // a sentence for the caller
  // A fixed label for metrics: missing, malformed, algorithm, bad_signature,
  // expired, not_yet_valid, wrong_issuer, wrong_audience, no_subject.
  const char* reason = "malformed";
};

class Verifier {
 public:
  // Fails when both or a malformed key are given.
  static absl::StatusOr<std::unique_ptr<Verifier>> create(VerifierOptions options);

  bool enabled() const { return !key_.empty(); }
  // The algorithms accepted, e.g. "HS256, HS384, HS512"; empty when off.
  std::string algorithms() const;

  // `authorization` is the metadata value: "Bearer <jwt>" (or a bare JWT).
  // Off: always the anonymous principal.
  std::variant<Principal, AuthError> verify(std::string_view authorization) const;

 private:
  explicit Verifier(VerifierOptions options, std::string key, bool asymmetric)
      : options_(std::move(options)), key_(std::move(key)), asymmetric_(asymmetric) {}

  VerifierOptions options_;
  std::string key_;
  bool asymmetric_ = false;
};

// Signs `claims` (a JSON object) with `alg` ("HS256", "RS256", "ES256", ...;
// "none" makes an unsigned token) and `key` (the secret, or a PEM private
// key). For `syncd token` and tests.
absl::StatusOr<std::string> sign_token(std::string_view alg, std::string_view key, std::string_view claims);

}  // namespace syncd::auth
