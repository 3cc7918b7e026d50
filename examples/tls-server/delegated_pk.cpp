// The two delegated private keys: RSA-alt callbacks and an EC mbedtls_pk_info_t.
#include "delegated_pk.h"

#include <mbedtls/ecdsa.h>
#include <mbedtls/pk_internal.h>
#include <mbedtls/version.h>

#include <cstddef>
#include <cstring>
#include <new>
#include <stdexcept>
#include <type_traits>

#include "keychain/client.h"
#include "mbedtls_handles.h"

// The EC delegate fills in mbedTLS 2.28's struct mbedtls_pk_info_t (pk_internal.h), whose layout
// is fixed within the 2.28 LTS series but changed in 3.0 (the header is gone there).
#if MBEDTLS_VERSION_NUMBER < 0x021C0000 || MBEDTLS_VERSION_NUMBER >= 0x021D0000
#error "delegated_pk.cpp is written for mbedTLS 2.28 (pk_internal.h's mbedtls_pk_info_t)"
#endif

namespace keychain::tls_server {

namespace {

int rsa_algorithm(mbedtls_md_type_t md) {
    switch (md) {
        case MBEDTLS_MD_SHA256:
            return KC_SIGN_RSA_PKCS1_SHA256;
        case MBEDTLS_MD_SHA384:
            return KC_SIGN_RSA_PKCS1_SHA384;
        case MBEDTLS_MD_SHA512:
            return KC_SIGN_RSA_PKCS1_SHA512;
        // TLS 1.2 always names the hash; NONE is a caller-built DigestInfo (older protocols).
        case MBEDTLS_MD_NONE:
            return KC_SIGN_RSA_PKCS1_RAW;
        default:
            return 0;
    }
}

int ecdsa_algorithm(mbedtls_md_type_t md, size_t hash_len) {
    switch (md) {
        case MBEDTLS_MD_SHA256:
            return KC_SIGN_ECDSA_SHA256;
        case MBEDTLS_MD_SHA384:
            return KC_SIGN_ECDSA_SHA384;
        case MBEDTLS_MD_SHA512:
            return KC_SIGN_ECDSA_SHA512;
        case MBEDTLS_MD_NONE:
            return hash_len == 32   ? KC_SIGN_ECDSA_SHA256
                   : hash_len == 48 ? KC_SIGN_ECDSA_SHA384
                   : hash_len == 64 ? KC_SIGN_ECDSA_SHA512
                                    : 0;
        default:
            return 0;
    }
}

// ---- RSA: mbedtls_pk_setup_rsa_alt ----

int rsa_sign(void* ctx, int (*)(void*, unsigned char*, size_t), void*, int mode,
             mbedtls_md_type_t md_alg, unsigned int hashlen, const unsigned char* hash,
             unsigned char* sig) {
    auto* d = static_cast<RsaDelegate*>(ctx);
    const int alg = rsa_algorithm(md_alg);
    if (mode != MBEDTLS_RSA_PRIVATE || alg == 0) return MBEDTLS_ERR_RSA_BAD_INPUT_DATA;
    const auto s = d->signer->sign(alg, {hash, hashlen});
    if (s.empty()) return MBEDTLS_ERR_RSA_PRIVATE_FAILED;
    if (s.size() != d->modulus_bytes) return MBEDTLS_ERR_RSA_PRIVATE_FAILED;
    std::memcpy(sig, s.data(), s.size());
    return 0;
}

// RSA key exchange (the only use of decryption) has no forward secrecy and is not offered
// (cipher_policy.cpp); the daemon's DECRYPT does OAEP, not TLS's PKCS#1 v1.5, anyway.
int rsa_decrypt(void*, int, size_t*, const unsigned char*, unsigned char*, size_t) {
    return MBEDTLS_ERR_RSA_UNSUPPORTED_OPERATION;
}

size_t rsa_key_len(void* ctx) { return static_cast<RsaDelegate*>(ctx)->modulus_bytes; }

// ---- EC: a pk_info of our own ----

// The pk context's pk_ctx. The public key comes first, so mbedtls_pk_ec() on this context
// (which casts pk_ctx) sees a valid keypair holding the group and point, with no private part.
struct EcDelegate {
    mbedtls_ecp_keypair public_key;
    DaemonSigner* signer;
};
static_assert(std::is_standard_layout_v<EcDelegate> && offsetof(EcDelegate, public_key) == 0);

size_t ec_bitlen(const void* ctx) {
    return static_cast<const EcDelegate*>(ctx)->public_key.grp.pbits;
}

int ec_can_do(mbedtls_pk_type_t type) {
    return type == MBEDTLS_PK_ECKEY || type == MBEDTLS_PK_ECDSA;
}

int ec_verify(void* ctx, mbedtls_md_type_t, const unsigned char* hash, size_t hash_len,
              const unsigned char* sig, size_t sig_len) {
    auto* d = static_cast<EcDelegate*>(ctx);
    const int rc = mbedtls_ecdsa_read_signature(&d->public_key, hash, hash_len, sig, sig_len);
    return rc == MBEDTLS_ERR_ECP_SIG_LEN_MISMATCH ? MBEDTLS_ERR_PK_SIG_LEN_MISMATCH : rc;
}

int ec_sign(void* ctx, mbedtls_md_type_t md_alg, const unsigned char* hash, size_t hash_len,
            unsigned char* sig, size_t* sig_len, int (*)(void*, unsigned char*, size_t), void*) {
    auto* d = static_cast<EcDelegate*>(ctx);
    const int alg = ecdsa_algorithm(md_alg, hash_len);
    if (alg == 0) return MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
    const auto s = d->signer->sign(alg, {hash, hash_len});
    // mbedtls_pk_sign's callers size `sig` for MBEDTLS_PK_SIGNATURE_MAX_SIZE.
    if (s.empty() || s.size() > MBEDTLS_ECDSA_MAX_LEN) return MBEDTLS_ERR_PK_BAD_INPUT_DATA;
    std::memcpy(sig, s.data(), s.size());
    *sig_len = s.size();
    return 0;
}

int ec_check_pair(const void*, const void*) { return MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE; }

void* ec_alloc() {
    auto* d = new (std::nothrow) EcDelegate;
    if (d == nullptr) return nullptr;
    mbedtls_ecp_keypair_init(&d->public_key);
    d->signer = nullptr;
    return d;
}

void ec_free(void* ctx) {
    auto* d = static_cast<EcDelegate*>(ctx);
    mbedtls_ecp_keypair_free(&d->public_key);
    delete d;
}

void ec_debug(const void* ctx, mbedtls_pk_debug_item* items) {
    items->type = MBEDTLS_PK_DEBUG_ECP;
    items->name = "eckey.Q";
    items->value =
        const_cast<mbedtls_ecp_point*>(&static_cast<const EcDelegate*>(ctx)->public_key.Q);
}

const mbedtls_pk_info_t& ec_delegate_info() {
    static const mbedtls_pk_info_t info = [] {
        mbedtls_pk_info_t i{};  // members this build leaves out (restartable ECC) stay null
        i.type = MBEDTLS_PK_ECKEY;
        i.name = "EC (keychaind)";
        i.get_bitlen = ec_bitlen;
        i.can_do = ec_can_do;
        i.verify_func = ec_verify;
        i.sign_func = ec_sign;
        i.decrypt_func = nullptr;
        i.encrypt_func = nullptr;
        i.check_pair_func = ec_check_pair;
        i.ctx_alloc_func = ec_alloc;
        i.ctx_free_func = ec_free;
        i.debug_func = ec_debug;
        return i;
    }();
    return info;
}

}  // namespace

void setup_rsa_delegate(mbedtls_pk_context* pk, RsaDelegate* delegate) {
    const int rc = mbedtls_pk_setup_rsa_alt(pk, delegate, rsa_decrypt, rsa_sign, rsa_key_len);
    if (rc != 0) throw std::runtime_error("mbedtls_pk_setup_rsa_alt: " + mbedtls_error_text(rc));
}

void setup_ec_delegate(mbedtls_pk_context* pk, const mbedtls_pk_context& public_key,
                       DaemonSigner* signer) {
    const mbedtls_ecp_keypair* src = mbedtls_pk_ec(public_key);
    if (src == nullptr) throw std::logic_error("setup_ec_delegate: not an EC public key");
    int rc = mbedtls_pk_setup(pk, &ec_delegate_info());
    if (rc != 0) throw std::runtime_error("mbedtls_pk_setup: " + mbedtls_error_text(rc));
    auto* d = static_cast<EcDelegate*>(pk->pk_ctx);
    d->signer = signer;
    rc = mbedtls_ecp_group_load(&d->public_key.grp, src->grp.id);
    if (rc == 0) rc = mbedtls_ecp_copy(&d->public_key.Q, &src->Q);
    if (rc != 0) throw std::runtime_error("copying the EC public key: " + mbedtls_error_text(rc));
}

}  // namespace keychain::tls_server
