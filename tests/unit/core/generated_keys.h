// Raw asymmetric keys of any size or curve (the backend's refusals need RSA-1024, secp256k1,
// P-521), made by mbedTLS directly, not through the backend; once per process. Identities with
// certificates come from tests/fixtures/test_keys.h.
#pragma once

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/secret_bytes.h"

namespace keychaind::core_test {

struct GeneratedKey {
    SecretBytes private_der;        // PKCS#1 (RSA) or SEC1 (EC)
    SecretBytes private_pem;        // the same key as PEM, without the trailing NUL
    std::vector<uint8_t> spki_der;  // SubjectPublicKeyInfo
};

// RSA generation is slow: each size is generated on first use and cached for the process.
const GeneratedKey& rsa_key(unsigned bits);
const GeneratedKey& ec_key(mbedtls_ecp_group_id curve);


// RAII mbedtls_pk_context.
struct PkContext {
    mbedtls_pk_context pk;
    PkContext() { mbedtls_pk_init(&pk); }
    ~PkContext() { mbedtls_pk_free(&pk); }
    PkContext(const PkContext&) = delete;
    PkContext& operator=(const PkContext&) = delete;
};
// A fresh public-key context parsed from SPKI DER (throws if it does not parse).
std::unique_ptr<PkContext> public_key_context(std::span<const uint8_t> spki_der);

}  // namespace keychaind::core_test
