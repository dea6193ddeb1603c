#include "ws/token_claims.h"

#include <boost/beast/core/detail/base64.hpp>
#include <nlohmann/json.hpp>

namespace bridge {

namespace {

// base64url (RFC 7515, unpadded) to bytes; nullopt on a bad character.
std::optional<std::string> base64url_decode(std::string_view in) {
  std::string b64(in);
  for (char& c : b64) {
    if (c == '-') {
      c = '+';
    } else if (c == '_') {
      c = '/';
    } else if (!std::isalnum(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
  }
  std::string out((b64.size() + 3) / 4 * 3, '\0');  // unpadded: round up
  const auto [written, read] = boost::beast::detail::base64::decode(out.data(), b64.data(), b64.size());
  if (read != b64.size()) return std::nullopt;
  out.resize(written);
  return out;
}

}  // namespace

std::optional<TokenClaims> read_claims(std::string_view authorization) {
  if (authorization.substr(0, 7) == "Bearer ") authorization.remove_prefix(7);
  const auto first = authorization.find('.');
  const auto second = authorization.find('.', first == std::string_view::npos ? first : first + 1);
  if (first == std::string_view::npos || second == std::string_view::npos) return std::nullopt;
  auto payload = base64url_decode(authorization.substr(first + 1, second - first - 1));
  if (!payload) return std::nullopt;
  const auto json = nlohmann::json::parse(*payload, nullptr, false);
  if (!json.is_object()) return std::nullopt;
  TokenClaims claims;
  if (auto sub = json.find("sub"); sub != json.end() && sub->is_string()) claims.subject = sub->get<std::string>();
  if (auto exp = json.find("exp"); exp != json.end() && exp->is_number()) {
    claims.expires = std::chrono::system_clock::time_point(std::chrono::seconds(exp->get<std::int64_t>()));
  }
  return claims;
}

}  // namespace bridge
