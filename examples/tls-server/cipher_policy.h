// Which cipher suites the server offers: forward-secret suites only (ECDHE, DHE), usable in TLS
// 1.2 and with the key's type; by default the ECDHE AEAD suites.
#pragma once

#include <string>
#include <vector>

namespace keychain::tls_server {

struct CipherChoice {
    std::vector<int> suites;           // mbedTLS ids, ending in 0 (mbedtls_ssl_conf_ciphersuites)
    std::vector<std::string> ignored;  // listed but unusable with this key ("X needs an EC key")
};

// `list`: suite names separated by ':' or ',', mbedTLS style
// (TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256) or IANA style (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
// any case; empty = the default. Throws std::invalid_argument naming the first suite that is
// unknown or has no forward secrecy, or saying that none fits the key.
CipherChoice choose_cipher_suites(const std::string& list, bool rsa_key);

// The default list for a key type, as names.
std::string default_cipher_suites(bool rsa_key);

}  // namespace keychain::tls_server
