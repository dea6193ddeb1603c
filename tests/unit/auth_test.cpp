// Tokens, channel patterns and rate limits (service/auth), no server.

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "auth/jwt.h"
#include "auth/principal.h"
#include "auth/rate_limiter.h"
#include "keys.h"

namespace syncd::auth {
namespace {

using Json = nlohmann::json;

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Json claims(const std::string& sub = "alice") {
  return {{"sub", sub}, {"exp", now_s() + 600}, {"sync", {{"read", {"lobby", "alice:*"}}, {"write", {"alice:*"}}}}};
}

std::string token(const Json& c, const std::string& key = "s3cret", const std::string& alg = "HS256") {
  auto t = sign_token(alg, key, c.dump());
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : "";
}

std::unique_ptr<Verifier> verifier(VerifierOptions o) {
  auto v = Verifier::create(std::move(o));
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *std::move(v) : nullptr;
}

// The refusal message, or "" when the token was accepted.
std::string refusal(const Verifier& v, const std::string& authorization) {
  auto r = v.verify(authorization);
  return std::holds_alternative<AuthError>(r) ? std::get<AuthError>(r).message : "";
}

TEST(ChannelPattern, ExactPrefixAndWildcard) {
  EXPECT_TRUE(pattern_matches("lobby", "lobby"));
  EXPECT_FALSE(pattern_matches("lobby", "lobby2"));
  EXPECT_TRUE(pattern_matches("user-42:*", "user-42:notes"));
  EXPECT_TRUE(pattern_matches("user-42:*", "user-42:"));
  EXPECT_FALSE(pattern_matches("user-42:*", "user-421:notes"));
  EXPECT_FALSE(pattern_matches("user-42:*", "user-42"));
  EXPECT_TRUE(pattern_matches("*", "anything"));
  EXPECT_FALSE(pattern_matches("", "lobby"));
}

TEST(Verifier, OffMeansAnonymousWithEveryChannel) {
  auto v = verifier({});
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->enabled());
  auto p = std::get<Principal>(v->verify(""));
  EXPECT_FALSE(p.authenticated());
  EXPECT_TRUE(p.can_read("x") && p.can_write("y"));
}

TEST(Verifier, AcceptsAGoodHs256TokenAndReadsItsClaims) {
  auto v = verifier({.secret = "s3cret"});
  auto r = v->verify("Bearer " + token(claims()));
  ASSERT_TRUE(std::holds_alternative<Principal>(r)) << std::get<AuthError>(r).message;
  const auto& p = std::get<Principal>(r);
  EXPECT_EQ(p.subject, "alice");
  EXPECT_TRUE(p.can_read("lobby"));
  EXPECT_TRUE(p.can_read("alice:notes"));
  EXPECT_FALSE(p.can_read("bob:notes"));
  EXPECT_TRUE(p.can_write("alice:notes"));
  EXPECT_FALSE(p.can_write("lobby"));
  ASSERT_TRUE(p.expires.has_value());
}

TEST(Verifier, EachBadTokenIsRefusedWithItsReason) {
  VerifierOptions o{.secret = "s3cret", .issuer = "https://issuer.example", .audience = "syncd"};
  o.leeway = std::chrono::seconds(0);
  auto v = verifier(o);
  Json good = claims();
  good["iss"] = "https://issuer.example";
  good["aud"] = Json::array({"other", "syncd"});
  EXPECT_EQ(refusal(*v, token(good)), "");

  EXPECT_NE(refusal(*v, "").find("no token"), std::string::npos);
  EXPECT_NE(refusal(*v, "Bearer abc").find("malformed"), std::string::npos);
  EXPECT_NE(refusal(*v, "a.b.c.d").find("malformed"), std::string::npos);
  EXPECT_NE(refusal(*v, "\xf1\xf1.b.c").find("base64url"), std::string::npos);
  EXPECT_NE(refusal(*v, token(good, "", "none")).find("alg \"none\""), std::string::npos);
  EXPECT_NE(refusal(*v, token(good, "wrong-secret")).find("bad signature"), std::string::npos);
  // A valid token with its claims swapped for others keeps a signature that no longer matches.
  {
    const std::string t = token(good);
    Json forged = good;
    forged["sync"]["write"] = {"*"};
    const std::string other = token(forged, "another");
    const std::string spliced = t.substr(0, t.find('.')) + other.substr(other.find('.'), other.rfind('.') - other.find('.')) +
                                t.substr(t.rfind('.'));
    EXPECT_NE(refusal(*v, spliced).find("bad signature"), std::string::npos);
  }
  Json expired = good;
  expired["exp"] = now_s() - 10;
  EXPECT_NE(refusal(*v, token(expired)).find("expired"), std::string::npos);
  Json early = good;
  early["nbf"] = now_s() + 3600;
  EXPECT_NE(refusal(*v, token(early)).find("not valid until"), std::string::npos);
  Json iss = good;
  iss["iss"] = "https://evil.example";
  EXPECT_NE(refusal(*v, token(iss)).find("wrong issuer"), std::string::npos);
  Json aud = good;
  aud["aud"] = "someone-else";
  EXPECT_NE(refusal(*v, token(aud)).find("wrong audience"), std::string::npos);
  Json nosub = good;
  nosub.erase("sub");
  EXPECT_NE(refusal(*v, token(nosub)).find("\"sub\""), std::string::npos);
  Json badsync = good;
  badsync["sync"] = {{"read", "lobby"}};
  EXPECT_NE(refusal(*v, token(badsync)).find("\"sync\""), std::string::npos);
  Json badexp = good;
  badexp["exp"] = "tomorrow";
  EXPECT_NE(refusal(*v, token(badexp)).find("exp, nbf and iat"), std::string::npos);
  // An HS256 server takes no RS256 token, whatever its signature.
  auto [priv, pub] = testing::key_pair("RSA");
  EXPECT_NE(refusal(*v, token(good, priv, "RS256")).find("accepts HS256"), std::string::npos);
}

TEST(Verifier, LeewayForgivesSmallClockSkew) {
  VerifierOptions o{.secret = "s3cret"};
  o.leeway = std::chrono::seconds(30);
  auto v = verifier(o);
  Json c = claims();
  c["exp"] = now_s() - 5;
  EXPECT_EQ(refusal(*v, token(c)), "");
  c["exp"] = now_s() - 60;
  EXPECT_NE(refusal(*v, token(c)), "");
}

TEST(Verifier, PublicKeysAcceptTheirFamilyOnly) {
  auto [rsa_priv, rsa_pub] = testing::key_pair("RSA");
  auto [ec_priv, ec_pub] = testing::key_pair("EC");
  auto rsa = verifier({.public_key_pem = rsa_pub});
  auto ec = verifier({.public_key_pem = ec_pub});
  EXPECT_EQ(rsa->algorithms(), "RS256, RS384, RS512");
  EXPECT_EQ(ec->algorithms(), "ES256, ES384, ES512");
  EXPECT_EQ(refusal(*rsa, token(claims(), rsa_priv, "RS256")), "");
  EXPECT_EQ(refusal(*ec, token(claims(), ec_priv, "ES256")), "");
  // Algorithm confusion: an HS256 token "signed" with the public key itself.
  EXPECT_NE(refusal(*rsa, token(claims(), rsa_pub, "HS256")).find("accepts RS256"), std::string::npos);
  // Another key of the same family.
  auto [other_priv, other_pub] = testing::key_pair("RSA");
  EXPECT_NE(refusal(*rsa, token(claims(), other_priv, "RS256")).find("bad signature"), std::string::npos);
  EXPECT_NE(refusal(*rsa, token(claims(), ec_priv, "ES256")).find("accepts RS256"), std::string::npos);
}

TEST(Verifier, RefusesBadKeyConfiguration) {
  EXPECT_FALSE(Verifier::create({.secret = "a", .public_key_pem = "b"}).ok());
  EXPECT_FALSE(Verifier::create({.public_key_pem = "not a key"}).ok());
}

TEST(RateLimiter, TokenBucketAllowsABurstThenTheRate) {
  RateLimiter l({.patches_per_second = 10, .bytes_per_second = 0});
  const auto t0 = RateLimiter::Clock::now();
  int admitted = 0;
  for (int i = 0; i < 50; ++i) admitted += l.admit_patch("a", 100, t0);
  EXPECT_EQ(admitted, 10);  // one second's burst
  EXPECT_TRUE(l.admit_patch("b", 100, t0)) << "subjects have separate buckets";
  EXPECT_FALSE(l.admit_patch("a", 100, t0 + std::chrono::milliseconds(50)));
  EXPECT_TRUE(l.admit_patch("a", 100, t0 + std::chrono::milliseconds(120)));
  admitted = 0;
  for (int i = 0; i < 50; ++i) admitted += l.admit_patch("a", 100, t0 + std::chrono::seconds(5));
  EXPECT_EQ(admitted, 10) << "the bucket refills to its cap, no more";
}

TEST(RateLimiter, BytesPerSecondCountsPatchSizes) {
  RateLimiter l({.patches_per_second = 0, .bytes_per_second = 1000});
  const auto t0 = RateLimiter::Clock::now();
  EXPECT_TRUE(l.admit_patch("a", 600, t0));
  EXPECT_FALSE(l.admit_patch("a", 600, t0));
  EXPECT_TRUE(l.admit_patch("a", 300, t0));
  EXPECT_TRUE(l.admit_patch("a", 600, t0 + std::chrono::seconds(1)));
}


}  // namespace
}  // namespace syncd::auth
