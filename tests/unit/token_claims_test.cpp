// The bridge reads `sub` and `exp` from a socket's token (syncd verifies it).

#include "ws/token_claims.h"

#include <gtest/gtest.h>

#include "auth/jwt.h"

namespace bridge {
namespace {

std::string token(const std::string& claims) {
  auto t = syncd::auth::sign_token("HS256", "secret", claims);
  EXPECT_TRUE(t.ok());
  return *t;
}

TEST(TokenClaims, SubjectAndExpiryFromABearerOrBareToken) {
  const std::string t = token(R"({"sub":"alice","exp":1767225600})");
  for (const std::string& auth : {"Bearer " + t, t}) {
    auto c = read_claims(auth);
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->subject, "alice");
    ASSERT_TRUE(c->expires.has_value());
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(c->expires->time_since_epoch()).count(), 1767225600);
  }
}

TEST(TokenClaims, NoExpiryIsNone) {
  auto c = read_claims(token(R"({"sub":"bob"})"));
  ASSERT_TRUE(c.has_value());
  EXPECT_FALSE(c->expires.has_value());
}

TEST(TokenClaims, PayloadsOfEveryLengthDecode) {
  // base64url without padding: lengths 0, 1 and 2 mod 3 all round-trip.
  for (const std::string& sub : {"a", "ab", "abc", "abcd", "user-\xc3\xa9"}) {
    auto c = read_claims(token(R"({"sub":")" + sub + R"("})"));
    ASSERT_TRUE(c.has_value()) << sub;
    EXPECT_EQ(c->subject, sub);
  }
}

TEST(TokenClaims, NotAJwtIsNothing) {
  EXPECT_FALSE(read_claims("").has_value());
  EXPECT_FALSE(read_claims("garbage").has_value());
  EXPECT_FALSE(read_claims("a.b").has_value());
  EXPECT_FALSE(read_claims("Bearer x.!!!.y").has_value());
  EXPECT_FALSE(read_claims("x.WzFd.y").has_value());  // a JSON array, not an object
  EXPECT_FALSE(read_claims("x.e30K\xff.y").has_value());
}

}  // namespace
}  // namespace bridge
