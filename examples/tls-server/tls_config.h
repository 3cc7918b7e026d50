// TlsConfig: the one mbedTLS server configuration every connection shares — TLS 1.2 only, the
// chosen suites, SHA-2 signatures, the daemon-held key and its chain, a seeded DRBG.
#pragma once

#include <vector>

#include "daemon_key.h"
#include "mbedtls_handles.h"

namespace keychain::tls_server {

class TlsConfig {
  public:
    // `suites` as choose_cipher_suites gives them (0-terminated). `key` must outlive this.
    // Throws std::runtime_error when mbedTLS refuses a setting.
    TlsConfig(DaemonKey& key, std::vector<int> suites);
    TlsConfig(const TlsConfig&) = delete;
    TlsConfig& operator=(const TlsConfig&) = delete;

    // Read-only once built: shared by every worker thread (mbedTLS allows this; the DRBG locks).
    const mbedtls_ssl_config* get() const { return config_.get(); }

  private:
    std::vector<int> suites_;  // mbedTLS keeps the pointer
    Entropy entropy_;
    CtrDrbg drbg_;
    SslConfig config_;  // last: freed first
};

}  // namespace keychain::tls_server
