// DaemonKey: a TLS identity held by keychaind — the certificate chain from GET_PUBLIC and a
// private-key context whose every signature is a SIGN request. The key itself never comes here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "daemon_signer.h"
#include "delegated_pk.h"
#include "mbedtls_handles.h"

namespace keychain::tls_server {

struct DaemonKeyOptions {
    std::string socket;  // empty: $KEYCHAIND_SOCKET, else the default socket
    std::string key;     // a key id, label:NAME or a label (docs/client.md)
    uint32_t wait_seconds =
        0;  // wait this long for the key to be present (a stick not yet plugged in)
    uint32_t sign_timeout_ms = 10000;
};

class DaemonKey {
  public:
    // Asks the daemon for the key's public part and certificates. Throws std::runtime_error with
    // a message for the operator: no such key, not a TLS key, no certificate, a certificate that
    // is not for the key.
    explicit DaemonKey(const DaemonKeyOptions& options);
    DaemonKey(const DaemonKey&) = delete;
    DaemonKey& operator=(const DaemonKey&) = delete;

    mbedtls_x509_crt* chain() { return chain_.get(); }
    mbedtls_pk_context* private_key() { return private_key_.get(); }
    bool is_rsa() const { return kind_ == KC_KIND_RSA; }
    const std::string& id() const { return signer_->key_id(); }
    // "RSA-2048 key 3f2a…" for the log.
    std::string description() const;

  private:
    int kind_ = 0;
    uint32_t bits_ = 0;
    std::unique_ptr<DaemonSigner> signer_;
    RsaDelegate rsa_delegate_;
    CertChain chain_;
    PkContext private_key_;  // after chain_ and the delegate it points at: freed first
};

}  // namespace keychain::tls_server
