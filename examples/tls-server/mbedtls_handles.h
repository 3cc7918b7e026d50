// RAII owners for mbedTLS contexts (init in the constructor, free in the destructor) and the
// library's error text.
#pragma once

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <string>

namespace keychain::tls_server {

// One mbedTLS context in place: mbedTLS keeps pointers into them, so they never move.
template <class T, void (*Init)(T*), void (*Free)(T*)>
class MbedContext {
  public:
    MbedContext() { Init(&value_); }
    ~MbedContext() { Free(&value_); }
    MbedContext(const MbedContext&) = delete;
    MbedContext& operator=(const MbedContext&) = delete;

    T* get() noexcept { return &value_; }
    const T* get() const noexcept { return &value_; }

  private:
    T value_;
};

using PkContext = MbedContext<mbedtls_pk_context, mbedtls_pk_init, mbedtls_pk_free>;
using CertChain = MbedContext<mbedtls_x509_crt, mbedtls_x509_crt_init, mbedtls_x509_crt_free>;
using SslConfig = MbedContext<mbedtls_ssl_config, mbedtls_ssl_config_init, mbedtls_ssl_config_free>;
using SslSession = MbedContext<mbedtls_ssl_context, mbedtls_ssl_init, mbedtls_ssl_free>;
using Entropy = MbedContext<mbedtls_entropy_context, mbedtls_entropy_init, mbedtls_entropy_free>;
using CtrDrbg = MbedContext<mbedtls_ctr_drbg_context, mbedtls_ctr_drbg_init, mbedtls_ctr_drbg_free>;

// "SSL - Processing of the ClientHello handshake message failed (-0x7900)"
inline std::string mbedtls_error_text(int rc) {
    char buf[160];
    mbedtls_strerror(rc, buf, sizeof buf);
    char code[24];
    snprintf(code, sizeof code, " (-0x%04x)", static_cast<unsigned>(-rc));
    return std::string(buf) + code;
}

}  // namespace keychain::tls_server
