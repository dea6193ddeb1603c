#pragma once
// Fresh key pairs for token tests, made with OpenSSL (nothing committed).

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <string>
#include <utility>

namespace syncd::testing {

// {private key PEM, public key PEM}; `type` is "RSA" (2048 bits) or "EC" (P-256).
inline std::pair<std::string, std::string> key_pair(const std::string& type) {
  EVP_PKEY* key = type == "RSA" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))
                                : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  auto pem = [&](bool priv) {
    BIO* bio = BIO_new(BIO_s_mem());
    priv ? PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) : PEM_write_bio_PUBKEY(bio, key);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return out;
  };
  std::pair<std::string, std::string> out{pem(true), pem(false)};
  EVP_PKEY_free(key);
  return out;
}

}  // namespace syncd::testing
