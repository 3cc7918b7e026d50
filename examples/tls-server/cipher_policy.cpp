// Cipher suite names to mbedTLS ids, with the forward-secrecy rule.
#include "cipher_policy.h"

#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>

#include <cctype>
#include <stdexcept>

namespace keychain::tls_server {

namespace {

constexpr const char* kDefaultRsa[] = {
    "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
    "TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256",
    "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
};
constexpr const char* kDefaultEc[] = {
    "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384",
    "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256",
    "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",
};

std::string normalized(std::string name) {
    for (char& c : name)
        c = c == '_' ? '-' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return name;
}

std::vector<std::string> split(const std::string& list) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : list) {
        if (c == ':' || c == ',') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else if (c != ' ' && c != '\t') {
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

bool forward_secret(mbedtls_key_exchange_type_t kx) {
    return kx == MBEDTLS_KEY_EXCHANGE_ECDHE_RSA || kx == MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA ||
           kx == MBEDTLS_KEY_EXCHANGE_DHE_RSA;
}

bool fits_key(mbedtls_key_exchange_type_t kx, bool rsa_key) {
    return rsa_key ? kx != MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA
                   : kx == MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA;
}

}  // namespace

std::string default_cipher_suites(bool rsa_key) {
    std::string out;
    for (const char* name : rsa_key ? kDefaultRsa : kDefaultEc) {
        if (mbedtls_ssl_ciphersuite_from_string(name) == nullptr) continue;
        if (!out.empty()) out += ':';
        out += name;
    }
    return out;
}

CipherChoice choose_cipher_suites(const std::string& list, bool rsa_key) {
    const auto names = split(list.empty() ? default_cipher_suites(rsa_key) : list);
    if (names.empty()) throw std::invalid_argument("the cipher list is empty");
    CipherChoice choice;
    for (const auto& given : names) {
        const std::string name = normalized(given);
        const mbedtls_ssl_ciphersuite_t* cs = mbedtls_ssl_ciphersuite_from_string(name.c_str());
        if (cs == nullptr)
            throw std::invalid_argument("unknown cipher suite " + given +
                                        " (mbedTLS 2.28 names, e.g. " + kDefaultRsa[0] + ")");
        if (!forward_secret(cs->key_exchange))
            throw std::invalid_argument(
                std::string(cs->name) +
                " has no forward secrecy: only ECDHE and DHE suites are offered");
        if (cs->max_minor_ver < MBEDTLS_SSL_MINOR_VERSION_3 ||
            (cs->flags & MBEDTLS_CIPHERSUITE_WEAK) != 0)
            throw std::invalid_argument(std::string(cs->name) + " is not usable in TLS 1.2");
        if (!fits_key(cs->key_exchange, rsa_key)) {
            choice.ignored.push_back(std::string(cs->name) +
                                     (rsa_key ? " needs an EC key" : " needs an RSA key"));
            continue;
        }
        choice.suites.push_back(cs->id);
    }
    if (choice.suites.empty())
        throw std::invalid_argument(std::string("no listed cipher suite can be used with an ") +
                                    (rsa_key ? "RSA key (use TLS-ECDHE-RSA-… suites)"
                                             : "EC key (use TLS-ECDHE-ECDSA-… suites)"));
    choice.suites.push_back(0);
    return choice;
}

}  // namespace keychain::tls_server
