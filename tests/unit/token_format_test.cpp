// Token syntax and time claims: the checks syncd and sync-bridge share
// (auth/token_format.h), and both sides refusing the same tokens.

#include "auth/token_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "auth/jwt.h"
#include "ws/token_claims.h"

namespace syncd::auth {
namespace {

constexpr std::string_view kJwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";

TEST(BearerToken, TakesABareOrBearerJwtInAnyCaseOfTheScheme) {
  for (const std::string& auth : {std::string(kJwt), "Bearer " + std::string(kJwt), "bearer " + std::string(kJwt),
                                  "BEARER " + std::string(kJwt)}) {
    const auto b = bearer_token(auth);
    ASSERT_TRUE(b.ok()) << auth << ": " << b.error;
    EXPECT_EQ(b.token, kJwt);
  }
  EXPECT_EQ(authorization_value(kJwt), "Bearer " + std::string(kJwt));
}

TEST(BearerToken, RefusesEveryByteAJwtCannotHoldWithoutQuotingIt) {
  const std::string jwt(kJwt);
  const std::string hostile[] = {
      "x.y.z\r\nx-evil: 1",  // header injection, as sent in ?token=
      jwt + "\r\nx-evil: 1",
      std::string("x.y.z\0", 6),
      "abc\xff.def.ghi",
      "a.b.c.d",
      "a.b",
      ".b.c",
      "a..c",
      "a.b=c.d",  // padding in the middle of a segment
      "a b.c.d",
      "Basic dXNlcjpwYXNz",
      "",
      "Bearer ",
      std::string(kMaxTokenBytes, 'a') + ".b.c",
  };
  for (const auto& h : hostile) {
    const auto b = bearer_token(h);
    EXPECT_FALSE(b.ok()) << h;
    EXPECT_TRUE(b.token.empty());
    if (h.size() > 3 && h != "Bearer ") {
      EXPECT_EQ(b.error.find(h), std::string::npos) << "the error quotes the token " << h << ": " << b.error;
    }
  }
}

TEST(BearerToken, AcceptedTokensAreLegalMetadata) {
  EXPECT_TRUE(legal_metadata_value(authorization_value(kJwt)));
  EXPECT_TRUE(legal_metadata_value(""));
  EXPECT_FALSE(legal_metadata_value("a\r\nb"));
  EXPECT_FALSE(legal_metadata_value(std::string("a\0b", 3)));
  EXPECT_FALSE(legal_metadata_value("\xff"));
  EXPECT_FALSE(legal_metadata_value("\x7f"));
}

TEST(TokenFingerprint, IsShortStableAndRevealsNothing) {
  const std::string a = token_fingerprint(kJwt);
  EXPECT_EQ(a, token_fingerprint(kJwt));
  EXPECT_NE(a, token_fingerprint("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiIn0.c2ln"));
  EXPECT_EQ(a.size(), 14u);
  EXPECT_EQ(a.rfind("token#", 0), 0u);
  EXPECT_EQ(a.find("eyJ"), std::string::npos);
}

TEST(NumericDate, AcceptsSecondsFrom1970ToTheYear9999) {
  EXPECT_EQ(numeric_date(0), 0);
  EXPECT_EQ(numeric_date(1767225600), 1767225600);
  EXPECT_EQ(numeric_date(1767225600.9), 1767225600);
  EXPECT_EQ(numeric_date(static_cast<double>(kMaxNumericDate)), kMaxNumericDate);
  for (double bad : {-1.0, 1e17, static_cast<double>(kMaxNumericDate) + 1, 1e300,
                     std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                     std::nan("")}) {
    EXPECT_FALSE(numeric_date(bad).has_value()) << bad;
  }
}

TEST(NumericDate, TimePointsSaturateWhereTheClockEnds) {
  using std::chrono::system_clock;
  EXPECT_EQ(time_point_of(kMaxNumericDate), system_clock::time_point::max());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(time_point_of(1767225600).time_since_epoch()).count(),
            1767225600);
  EXPECT_EQ(time_point_of(0), system_clock::time_point());
}

std::string signed_token(const std::string& claims) {
  auto t = sign_token("HS256", "secret", claims);
  EXPECT_TRUE(t.ok());
  return *t;
}

// The same token gets the same answer from syncd's verifier and the bridge.
TEST(TimeClaims, SyncdAndTheBridgeRefuseTheSameOutOfRangeTimes) {
  VerifierOptions options;
  options.secret = "secret";
  auto verifier = Verifier::create(options);
  ASSERT_TRUE(verifier.ok());
  for (const std::string claim : {R"("exp":1e17)", R"("exp":-5)", R"("nbf":1e300)", R"("iat":-1)",
                                  R"("exp":"tomorrow")", R"("iat":253402300800)"}) {
    const std::string t = signed_token(R"({"sub":"alice",)" + claim + "}");
    auto v = (*verifier)->verify("Bearer " + t);
    ASSERT_TRUE(std::holds_alternative<AuthError>(v)) << claim;
    EXPECT_NE(std::get<AuthError>(v).message.find("malformed token"), std::string::npos) << claim;
    EXPECT_FALSE(bridge::read_claims("Bearer " + t).has_value()) << claim;
  }
  // Far but in range: valid on both sides, expiring where the clock ends.
  const std::string far = signed_token(R"({"sub":"alice","exp":253402300799,"iat":1767225600})");
  auto v = (*verifier)->verify("Bearer " + far);
  ASSERT_TRUE(std::holds_alternative<Principal>(v));
  EXPECT_EQ(std::get<Principal>(v).expires, std::chrono::system_clock::time_point::max());
  auto c = bridge::read_claims(far);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->expires, std::chrono::system_clock::time_point::max());
}

}  // namespace
}  // namespace syncd::auth
