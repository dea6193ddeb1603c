#include "ws/token_claims.h"

#include <boost/beast/core/detail/base64.hpp>

#include "auth/token_format.h"
#include "codec/json_parse.h"

namespace bridge {

namespace {

// base64url (RFC 7515; bearer_token() has checked the characters) to bytes.
std::optional<std::string> base64url_decode(std::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string b64(in);
  for (char& c : b64) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  std::string out((b64.size() + 3) / 4 * 3, '\0');  // unpadded: round up
  const auto [written, read] = boost::beast::detail::base64::decode(out.data(), b64.data(), b64.size());
  if (read != b64.size()) return std::nullopt;
  out.resize(written);
  return out;
}

// A NumericDate claim; false when present but not one.
bool time_claim(const boost::json::object& claims, std::string_view name, std::optional<std::int64_t>* out) {
  const boost::json::value* v = claims.if_contains(name);
  if (v == nullptr) return true;
  if (!v->is_number()) return false;
  const double seconds = v->is_double()  ? v->get_double()
                         : v->is_int64() ? static_cast<double>(v->get_int64())
                                         : static_cast<double>(v->get_uint64());
  *out = syncd::auth::numeric_date(seconds);
  return out->has_value();
}

}  // namespace

std::optional<TokenClaims> read_claims(std::string_view authorization) {
  const auto bearer = syncd::auth::bearer_token(authorization);
  if (!bearer.ok()) return std::nullopt;
  const std::string_view token = bearer.token;
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  auto payload = base64url_decode(token.substr(first + 1, second - first - 1));
  if (!payload) return std::nullopt;
  auto parsed = codec::parse_json(*payload, codec::ParseLimits{.max_depth = 16, .max_values = 4096});
  auto* json = std::get_if<boost::json::value>(&parsed);
  if (json == nullptr || !json->is_object()) return std::nullopt;
  const auto& claims = json->get_object();
  std::optional<std::int64_t> exp, nbf, iat;
  if (!time_claim(claims, "exp", &exp) || !time_claim(claims, "nbf", &nbf) || !time_claim(claims, "iat", &iat)) {
    return std::nullopt;
  }
  TokenClaims out;
  if (const auto* sub = claims.if_contains("sub"); sub != nullptr && sub->is_string()) {
    out.subject.assign(sub->get_string().data(), sub->get_string().size());
  }
  if (exp) out.expires = syncd::auth::time_point_of(*exp);
  return out;
}

}  // namespace bridge
