#pragma once
// The rules every untrusted token passes before anything else sees it,
// shared by syncd and sync-bridge so both give the same answer.
//
// A bearer token is a JWT: three base64url segments separated by dots, at
// most kMaxTokenBytes. Checking that first keeps every other byte out of
// gRPC metadata (where an illegal value aborts the process), out of the JWT
// library and out of logs. Time claims (exp, nbf, iat) are range-checked
// here once, before they become time points or timer durations.
//
// No dependencies and nothing here throws; every function is thread-safe.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace syncd::auth {

// Longer tokens are refused (gRPC's default metadata limit is 8 KiB).
inline constexpr std::size_t kMaxTokenBytes = 4096;

// A token taken out of an `authorization` value, or why it was refused.
struct BearerToken {
  std::string_view token;  // the bare JWT when `error` is empty
  std::string error;       // a sentence for the caller; never quotes the token
  bool ok() const { return error.empty(); }
};

// `authorization` is "Bearer <jwt>" (any case of "bearer") or a bare JWT.
// The JWT must be three base64url segments (A-Z a-z 0-9 - _, optional '='
// padding), header and payload non-empty, at most kMaxTokenBytes in all.
BearerToken bearer_token(std::string_view authorization);

// "Bearer <jwt>" for a token bearer_token() accepted: the only form that
// goes into gRPC metadata.
std::string authorization_value(std::string_view token);

// True when `value` may be a gRPC metadata value of an ASCII key: printable
// ASCII only (0x20-0x7E). gRPC aborts the process on anything else.
bool legal_metadata_value(std::string_view value);

// A short, stable name for a token in logs ("token#1a2b3c4d"): enough to
// tell two tokens apart, useless for replaying one.
std::string token_fingerprint(std::string_view token);

// JWT NumericDate claims (exp, nbf, iat): whole seconds since 1970 between
// 0 and kMaxNumericDate (the end of year 9999). Fractions are dropped.
// nullopt for anything else: negative, too large, NaN or infinite. Every
// number a JSON library can hold converts to double without overflow, so
// callers pass the claim as a double.
inline constexpr std::int64_t kMaxNumericDate = 253402300799;
std::optional<std::int64_t> numeric_date(double seconds);

// A checked NumericDate as a time point, saturating at the clock's range
// (system_clock counts nanoseconds in 64 bits: it ends in 2262).
std::chrono::system_clock::time_point time_point_of(std::int64_t seconds);

}  // namespace syncd::auth
