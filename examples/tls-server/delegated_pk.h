// mbedTLS private-key contexts whose signatures are made by keychaind: RSA through the library's
// RSA-alt hooks, EC through a key type of our own (README.md, "EC keys").
#pragma once

#include <mbedtls/pk.h>

#include <cstddef>

#include "daemon_signer.h"

namespace keychain::tls_server {

// What an RSA-alt context points at; must outlive the pk context.
struct RsaDelegate {
    DaemonSigner* signer = nullptr;
    size_t modulus_bytes = 0;
};

// `pk` (freshly initialized) becomes an RSA-alt key signing PKCS#1 v1.5 through `delegate`.
// Throws std::runtime_error when mbedTLS refuses.
void setup_rsa_delegate(mbedtls_pk_context* pk, RsaDelegate* delegate);

// `pk` (freshly initialized) becomes an EC key that holds only `public_key`'s group and point and
// signs ECDSA through `signer` (which must outlive it). Throws std::runtime_error.
void setup_ec_delegate(mbedtls_pk_context* pk, const mbedtls_pk_context& public_key,
                       DaemonSigner* signer);

}  // namespace keychain::tls_server
