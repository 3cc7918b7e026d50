// Loading a TLS identity's public half from keychaind and checking it.
#include "daemon_key.h"

#include <stdexcept>
#include <vector>

#include "keychain/client.hpp"
#include "server_log.h"

namespace keychain::tls_server {

namespace {

std::string kind_name(int kind, uint32_t bits) {
    switch (kind) {
        case KC_KIND_RSA:
            return "RSA-" + std::to_string(bits);
        case KC_KIND_EC_P256:
            return "EC P-256";
        case KC_KIND_EC_P384:
            return "EC P-384";
        case KC_KIND_AES256:
            return "AES-256";
        default:
            return "kind " + std::to_string(kind);
    }
}

std::vector<uint8_t> public_key_der(mbedtls_pk_context* pk) {
    std::vector<uint8_t> buf(4096);
    const int n = mbedtls_pk_write_pubkey_der(pk, buf.data(), buf.size());
    if (n < 0)
        throw std::runtime_error("cannot encode the certificate's public key: " +
                                 mbedtls_error_text(n));
    return {buf.end() - n, buf.end()};
}

keychain::PublicKey fetch_public(const DaemonKeyOptions& o) {
    try {
        keychain::Client client(o.socket.empty() ? nullptr : o.socket.c_str());
        if (o.wait_seconds > 0) {
            log_line("waiting up to " + std::to_string(o.wait_seconds) + " s for key " +
                     printable(o.key));
            client.wait(o.key, o.wait_seconds * 1000);
        }
        return client.get_public(o.key);
    } catch (const keychain::Error& e) {
        throw std::runtime_error("key " + printable(o.key) + ": keychaind answered " + e.name() +
                                 ": " + printable(e.message()));
    }
}

}  // namespace

DaemonKey::DaemonKey(const DaemonKeyOptions& o) {
    const keychain::PublicKey pub = fetch_public(o);
    kind_ = pub.kind;
    bits_ = pub.bits;
    const std::string what =
        "key " + printable(o.key) + " (" + kind_name(kind_, bits_) + ", id " + pub.id + ")";
    if (kind_ != KC_KIND_RSA && kind_ != KC_KIND_EC_P256 && kind_ != KC_KIND_EC_P384)
        throw std::runtime_error(what + " is not a TLS key: need RSA or EC P-256/P-384");
    if (pub.certificates.empty())
        throw std::runtime_error(
            what + " has no certificate chain: give its .4DKeyChain entry a \"certificate\"");

    for (size_t i = 0; i < pub.certificates.size(); ++i) {
        const auto& der = pub.certificates[i];
        const int rc = mbedtls_x509_crt_parse_der(chain_.get(), der.data(), der.size());
        if (rc != 0)
            throw std::runtime_error(what + ": certificate " + std::to_string(i) +
                                     " does not parse: " + mbedtls_error_text(rc));
    }
    // The daemon checks this when it loads the entry; a server that is about to hand the chain to
    // every client checks it again rather than fail every handshake.
    if (public_key_der(&chain_.get()->pk) != pub.spki)
        throw std::runtime_error(what + ": the first certificate is not for this key");

    signer_ = std::make_unique<DaemonSigner>(o.socket, pub.id, o.sign_timeout_ms);
    if (kind_ == KC_KIND_RSA) {
        rsa_delegate_ = {signer_.get(), (bits_ + 7) / 8};
        setup_rsa_delegate(private_key_.get(), &rsa_delegate_);
    } else {
        setup_ec_delegate(private_key_.get(), chain_.get()->pk, signer_.get());
    }
}

std::string DaemonKey::description() const {
    return kind_name(kind_, bits_) + " key " + signer_->key_id();
}

}  // namespace keychain::tls_server
