// libFuzzer target: the JWT front end on arbitrary authorization values.
// verify() must answer every input with a principal or a reason, never
// crash, throw or read out of bounds, under both key families.

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "auth/jwt.h"

namespace {

const syncd::auth::Verifier& hmac() {
  static auto v = *syncd::auth::Verifier::create({.secret = "fuzz-secret", .issuer = "iss", .audience = "aud"});
  return *v;
}

const syncd::auth::Verifier& ec() {
  static auto v = *syncd::auth::Verifier::create({.public_key_pem =
                                                       "-----BEGIN PUBLIC KEY-----\n"
                                                       "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELGM8tDQ4FRnyzAp2Kygg48W38LZt\n"
                                                       "rpUZ4sgdJzYu8eVnc3uJSDyDOG460Jcyt7DNX9HJCoXXWLSpnj1bY6LKCQ==\n"
                                                       "-----END PUBLIC KEY-----\n"});
  return *v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view token(reinterpret_cast<const char*>(data), size);
  for (const auto* v : {&hmac(), &ec()}) {
    auto r = v->verify(token);
    if (auto* e = std::get_if<syncd::auth::AuthError>(&r); e != nullptr && e->message.empty()) std::abort();
  }
  return 0;
}
