// Owners for the OpenSSL objects the OpenSSL backend holds: each freed exactly once.
#pragma once

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>

namespace keychaind::ossl {

template <auto Free>
struct Deleter {
    template <class T>
    void operator()(T* p) const noexcept {
        Free(p);
    }
};

using Pkey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, Deleter<EVP_CIPHER_CTX_free>>;
using Cipher = std::unique_ptr<EVP_CIPHER, Deleter<EVP_CIPHER_free>>;
using Md = std::unique_ptr<EVP_MD, Deleter<EVP_MD_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO_free>>;
using X509Cert = std::unique_ptr<X509, Deleter<X509_free>>;
using DecoderCtx = std::unique_ptr<OSSL_DECODER_CTX, Deleter<OSSL_DECODER_CTX_free>>;

// One block from PEM_read_bio_ex with PEM_FLAG_SECURE: name, headers and the decoded DER all
// come from OpenSSL's secure heap and are wiped when the block goes.
struct PemBlock {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long size = 0;

    PemBlock() = default;
    PemBlock(const PemBlock&) = delete;
    PemBlock& operator=(const PemBlock&) = delete;
    ~PemBlock() { reset(); }
    void reset() noexcept {
        OPENSSL_secure_clear_free(data, static_cast<size_t>(size));
        OPENSSL_secure_free(header);
        OPENSSL_secure_free(name);
        name = header = nullptr;
        data = nullptr;
        size = 0;
    }
};

}  // namespace keychaind::ossl
