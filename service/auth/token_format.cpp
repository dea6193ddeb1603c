#include "auth/token_format.h"

#include <cmath>

namespace syncd::auth {

namespace {

bool base64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// A base64url segment, allowing '=' padding only at its end.
bool base64url_segment(std::string_view s) {
  while (!s.empty() && s.back() == '=') s.remove_suffix(1);
  for (char c : s) {
    if (!base64url_char(c)) return false;
  }
  return true;
}

bool starts_with_bearer(std::string_view s) {
  static constexpr std::string_view kScheme = "bearer ";
  if (s.size() < kScheme.size()) return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    const char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    if (c != kScheme[i]) return false;
  }
  return true;
}

}  // namespace

BearerToken bearer_token(std::string_view authorization) {
  std::string_view token = authorization;
  if (starts_with_bearer(token)) token.remove_prefix(7);
  if (token.empty()) return {{}, "no token: send `authorization: Bearer <JWT>` (WebSocket: ?token=<JWT>)"};
  if (token.size() > kMaxTokenBytes) {
    return {{}, "malformed token: longer than " + std::to_string(kMaxTokenBytes) + " bytes"};
  }
  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return {{}, "malformed token: a JWT is three base64url parts separated by dots"};
  }
  const std::string_view header = token.substr(0, dot1);
  const std::string_view payload = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature = token.substr(dot2 + 1);
  if (!base64url_segment(header) || !base64url_segment(payload) || !base64url_segment(signature)) {
    return {{}, "malformed token: a JWT holds only base64url characters (A-Z a-z 0-9 - _) and two dots"};
  }
  if (header.empty() || payload.empty()) return {{}, "malformed token: its header or claims part is empty"};
  return {token, {}};
}

std::string authorization_value(std::string_view token) { return "Bearer " + std::string(token); }

bool legal_metadata_value(std::string_view value) {
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

std::string token_fingerprint(std::string_view token) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (char c : token) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "token#";
  for (int shift = 28; shift >= 0; shift -= 4) out += kHex[(h >> shift) & 0xf];
  return out;
}

std::optional<std::int64_t> numeric_date(double seconds) {
  // The negated comparisons are false for NaN too.
  if (!(seconds >= 0) || !(seconds <= static_cast<double>(kMaxNumericDate))) return std::nullopt;
  return static_cast<std::int64_t>(seconds);
}

std::chrono::system_clock::time_point time_point_of(std::int64_t seconds) {
  using Clock = std::chrono::system_clock;
  const auto max_seconds = std::chrono::duration_cast<std::chrono::seconds>(Clock::time_point::max().time_since_epoch());
  if (seconds >= max_seconds.count()) return Clock::time_point::max();
  if (seconds <= 0) return Clock::time_point();
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(seconds)));
}

}  // namespace syncd::auth
