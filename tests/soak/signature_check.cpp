// Signature verification for the soak with OpenSSL's EVP interface.
#include "signature_check.h"

#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <stdexcept>

#include "keychain/client.h"

namespace keychaind::soak {

PublicKeyCheck::PublicKeyCheck(const std::vector<uint8_t>& spki) {
    const unsigned char* p = spki.data();
    key_.reset(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
    if (!key_) throw std::runtime_error("OpenSSL cannot parse a SubjectPublicKeyInfo of the soak's keys");
}

bool PublicKeyCheck::verifies(int alg, const std::vector<uint8_t>& digest, const std::vector<uint8_t>& sig) const {
    struct FreeCtx {
        void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
    };
    const std::unique_ptr<EVP_PKEY_CTX, FreeCtx> ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
    if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1)
        return false;
    if (alg == KC_SIGN_RSA_PSS_SHA256 &&
        (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_DIGEST) != 1))
        return false;
    if (alg == KC_SIGN_RSA_PKCS1_SHA256 && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1)
        return false;
    return EVP_PKEY_verify(ctx.get(), sig.data(), sig.size(), digest.data(), digest.size()) == 1;
}

}  // namespace keychaind::soak
