// Which CryptoBackend the daemon uses: the one named at build time (KEYCHAIND_CRYPTO_BACKEND).
#include "core/crypto_backend.h"

#ifndef KEYCHAIND_CRYPTO_BACKEND_NAME
#error "KEYCHAIND_CRYPTO_BACKEND_NAME must name the backend (daemon/CMakeLists.txt sets it)"
#endif

namespace keychaind {

const CryptoBackend* crypto_backend_named(std::string_view name) {
    if (name == "mbedtls") return &mbedtls_crypto_backend();
    if (name == "openssl") return &openssl_crypto_backend();
    return nullptr;
}

const CryptoBackend& crypto_backend() {
    static const CryptoBackend* const selected = crypto_backend_named(KEYCHAIND_CRYPTO_BACKEND_NAME);
    return *selected;
}

}  // namespace keychaind
