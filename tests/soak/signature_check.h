// PublicKeyCheck: verifies the daemon's signatures with OpenSSL, outside the daemon.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace keychaind::soak {

class PublicKeyCheck {
public:
    // spki: SubjectPublicKeyInfo DER; throws when OpenSSL cannot parse it.
    explicit PublicKeyCheck(const std::vector<uint8_t>& spki);
    // alg: KC_SIGN_ECDSA_SHA256, KC_SIGN_RSA_PKCS1_SHA256 or KC_SIGN_RSA_PSS_SHA256 over a
    // 32-byte digest (PSS: MGF1-SHA256, salt 32, as docs/protocol.md says).
    bool verifies(int alg, const std::vector<uint8_t>& digest, const std::vector<uint8_t>& sig) const;

private:
    struct Free {
        void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
    };
    std::unique_ptr<EVP_PKEY, Free> key_;
};

}  // namespace keychaind::soak
