#include "auth/jwt.h"

#include "auth/token_format.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <jwt/jwt.hpp>
#include <nlohmann/json.hpp>

namespace syncd::auth {
namespace {

using Json = nlohmann::json;

constexpr const char* kHmac[] = {"HS256", "HS384", "HS512"};
constexpr const char* kRsa[] = {"RS256", "RS384", "RS512"};
constexpr const char* kEc[] = {"ES256", "ES384", "ES512"};

// The JSON object in a base64url token segment, or a discarded value.
Json segment_json(std::string_view segment) {
  const std::string text = jwt::base64_uri_decode(segment.data(), segment.size());
  return Json::parse(text, nullptr, /*allow_exceptions=*/false);
}

std::string utc(std::int64_t seconds) {
  char buf[32];
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A NumericDate claim (exp, nbf, iat), range-checked by numeric_date();
// false when present but not such a number.
bool time_claim(const Json& claims, const char* name, std::optional<std::int64_t>* out) {
  auto it = claims.find(name);
  if (it == claims.end()) return true;
  if (!it->is_number()) return false;
  *out = numeric_date(it->get<double>());
  return out->has_value();
}

// A list of channel patterns under sync.<name>; false when malformed.
bool patterns(const Json& sync, const char* name, std::vector<std::string>* out) {
  auto it = sync.find(name);
  if (it == sync.end()) return true;
  if (!it->is_array()) return false;
  for (const Json& p : *it) {
    if (!p.is_string()) return false;
    out->push_back(p.get<std::string>());
  }
  return true;
}

// The accepted algorithms for a PEM public key: its family only.
std::optional<std::vector<std::string>> family_of(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return std::nullopt;
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) return std::nullopt;
  const int type = EVP_PKEY_base_id(key);
  EVP_PKEY_free(key);
  if (type == EVP_PKEY_RSA) return std::vector<std::string>(std::begin(kRsa), std::end(kRsa));
  if (type == EVP_PKEY_EC) return std::vector<std::string>(std::begin(kEc), std::end(kEc));
  return std::nullopt;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Verifier>> Verifier::create(VerifierOptions options) {
  if (!options.secret.empty() && !options.public_key_pem.empty()) {
    return absl::InvalidArgumentError("give --jwt-secret-file or --jwt-public-key-file, not both");
  }
  std::string key = !options.secret.empty() ? options.secret : options.public_key_pem;
  const bool asymmetric = !options.public_key_pem.empty();
  if (asymmetric && !family_of(options.public_key_pem)) {
    return absl::InvalidArgumentError(
        "the public key file is not a PEM RSA or EC public key (-----BEGIN PUBLIC KEY-----)");
  }
  return std::unique_ptr<Verifier>(new Verifier(std::move(options), std::move(key), asymmetric));
}

std::string Verifier::algorithms() const {
  if (!enabled()) return "";
  std::vector<std::string> algs =
      asymmetric_ ? *family_of(key_) : std::vector<std::string>(std::begin(kHmac), std::end(kHmac));
  std::string out;
  for (const auto& a : algs) out += (out.empty() ? "" : ", ") + a;
  return out;
}

std::variant<Principal, AuthError> Verifier::verify(std::string_view authorization) const {
  if (!enabled()) return Principal::anonymous();
  const BearerToken bearer = bearer_token(authorization);
  if (!bearer.ok()) return AuthError{bearer.error, authorization.empty() ? "missing" : "malformed"};
  const std::string_view token = bearer.token;
  const auto dot1 = token.find('.');
  const auto dot2 = token.find('.', dot1 + 1);
  try {
    const Json header = segment_json(token.substr(0, dot1));
    if (!header.is_object() || !header.contains("alg") || !header["alg"].is_string()) {
      return AuthError{"malformed token: the header is not a JSON object with an \"alg\""};
    }
    const std::string alg = header["alg"].get<std::string>();
    if (alg == "none" || alg == "NONE" || alg == "None") {
      return AuthError{"unsigned tokens (alg \"none\") are not accepted", "algorithm"};
    }
    const std::string accepted = algorithms();
    bool ok = false;
    for (std::string_view rest = accepted; !rest.empty();) {
      const auto comma = rest.find(", ");
      ok = ok || rest.substr(0, comma) == alg;
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 2);
    }
    if (!ok) {
      std::string shown = alg.substr(0, 16);  // the caller's bytes: printable ASCII only, for logs too
      for (char& c : shown) c = c >= 0x20 && c < 0x7f ? c : '?';
      return AuthError{"the token is signed with " + shown + "; this server accepts " + accepted, "algorithm"};
    }
    const std::string_view signature = token.substr(dot2 + 1);
    if (signature.empty()) return AuthError{"malformed token: the signature is empty"};
    jwt::jwt_header h{jwt::str_to_alg(alg)};
    jwt::jwt_signature signer{key_};
    const auto [valid, ec] = signer.verify(h, token.substr(0, dot2), signature);
    if (ec || !valid) return AuthError{"bad signature: the token was not signed with this server's key", "bad_signature"};

    const Json claims = segment_json(token.substr(dot1 + 1, dot2 - dot1 - 1));
    if (!claims.is_object()) return AuthError{"malformed token: the claims are not a JSON object"};
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    std::optional<std::int64_t> exp, nbf, iat;
    if (!time_claim(claims, "exp", &exp) || !time_claim(claims, "nbf", &nbf) || !time_claim(claims, "iat", &iat)) {
      return AuthError{"malformed token: exp, nbf and iat must be seconds since 1970, up to the year 9999"};
    }
    if (exp && now > *exp + options_.leeway.count()) return AuthError{"the token expired at " + utc(*exp), "expired"};
    if (nbf && now + options_.leeway.count() < *nbf) return AuthError{"the token is not valid until " + utc(*nbf), "not_yet_valid"};
    if (!options_.issuer.empty()) {
      auto iss = claims.find("iss");
      if (iss == claims.end() || !iss->is_string() || iss->get<std::string>() != options_.issuer) {
        return AuthError{"wrong issuer: this server accepts tokens from \"" + options_.issuer + "\"", "wrong_issuer"};
      }
    }
    if (!options_.audience.empty()) {
      auto aud = claims.find("aud");
      bool match = false;
      if (aud != claims.end() && aud->is_string()) match = aud->get<std::string>() == options_.audience;
      if (aud != claims.end() && aud->is_array()) {
        for (const Json& a : *aud) match = match || (a.is_string() && a.get<std::string>() == options_.audience);
      }
      if (!match) return AuthError{"wrong audience: this server accepts tokens for \"" + options_.audience + "\"", "wrong_audience"};
    }
    auto sub = claims.find("sub");
    if (sub == claims.end() || !sub->is_string() || sub->get<std::string>().empty()) {
      return AuthError{"the token has no \"sub\" (subject) claim", "no_subject"};
    }
    Principal p;
    p.subject = sub->get<std::string>();
    if (auto sync = claims.find("sync"); sync != claims.end()) {
      if (!sync->is_object() || !patterns(*sync, "read", &p.read) || !patterns(*sync, "write", &p.write)) {
        return AuthError{"malformed token: \"sync\" must be {\"read\": [patterns], \"write\": [patterns]}"};
      }
    }
    if (exp) p.expires = time_point_of(*exp + options_.leeway.count());
    return p;
  } catch (const std::exception& e) {
    // cpp-jwt and OpenSSL wrappers may throw on hostile input; never past here.
    return AuthError{std::string("malformed token: ") + e.what()};
  }
}

absl::StatusOr<std::string> sign_token(std::string_view alg, std::string_view key, std::string_view claims) {
  const Json payload = Json::parse(claims, nullptr, /*allow_exceptions=*/false);
  if (!payload.is_object()) return absl::InvalidArgumentError("claims must be a JSON object");
  try {
    jwt::jwt_object obj{jwt::params::algorithm(std::string(alg)), jwt::params::secret(std::string(key))};
    for (auto it = payload.begin(); it != payload.end(); ++it) obj.payload().add_claim(it.key(), it.value());
    std::error_code ec;
    std::string token = obj.signature(ec);
    if (ec) return absl::InvalidArgumentError("cannot sign: " + ec.message());
    return token;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(std::string("cannot sign: ") + e.what());
  }
}

}  // namespace syncd::auth
