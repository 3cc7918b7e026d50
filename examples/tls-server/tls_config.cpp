// Building the server's mbedTLS configuration.
#include "tls_config.h"

#include <stdexcept>

namespace keychain::tls_server {

namespace {

// The daemon signs SHA-256/384/512 digests only; TLS 1.2 clients say which they accept.
const int kSignatureHashes[] = {MBEDTLS_MD_SHA512, MBEDTLS_MD_SHA384, MBEDTLS_MD_SHA256,
                                MBEDTLS_MD_NONE};
// ECDHE groups, in order of preference.
const mbedtls_ecp_group_id kCurves[] = {MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
                                        MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_NONE};

void check(int rc, const char* what) {
    if (rc != 0) throw std::runtime_error(std::string(what) + ": " + mbedtls_error_text(rc));
}

}  // namespace

TlsConfig::TlsConfig(DaemonKey& key, std::vector<int> suites) : suites_(std::move(suites)) {
    static const unsigned char kPersonalization[] = "keychain-tls-server";
    check(mbedtls_ctr_drbg_seed(drbg_.get(), mbedtls_entropy_func, entropy_.get(), kPersonalization,
                                sizeof kPersonalization),
          "seeding the DRBG");
    mbedtls_ssl_config* c = config_.get();
    check(mbedtls_ssl_config_defaults(c, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                      MBEDTLS_SSL_PRESET_DEFAULT),
          "mbedtls_ssl_config_defaults");
    // TLS 1.2 is the floor, and the ceiling of mbedTLS 2.28 (it has no TLS 1.3).
    mbedtls_ssl_conf_min_version(c, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(c, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(c, suites_.data());
    mbedtls_ssl_conf_sig_hashes(c, kSignatureHashes);
    mbedtls_ssl_conf_curves(c, kCurves);
    mbedtls_ssl_conf_rng(c, mbedtls_ctr_drbg_random, drbg_.get());
    mbedtls_ssl_conf_renegotiation(c, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    check(mbedtls_ssl_conf_own_cert(c, key.chain(), key.private_key()),
          "mbedtls_ssl_conf_own_cert");
}

}  // namespace keychain::tls_server
