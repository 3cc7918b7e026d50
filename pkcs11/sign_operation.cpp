// SignOperation: mechanism checks, PSS parameters, hashing, the daemon's algorithm values.
#include "sign_operation.h"

#include <mbedtls/md.h>

#include <cstring>

#include "der_codec.h"
#include "keychain/client.h"

namespace keychaind::pkcs11 {
namespace {

[[noreturn]] void fail(CK_RV rv, const std::string& why) { throw Pkcs11Error(rv, why); }

mbedtls_md_type_t md_type(Prehash h) {
    switch (h) {
        case Prehash::Sha256:
            return MBEDTLS_MD_SHA256;
        case Prehash::Sha384:
            return MBEDTLS_MD_SHA384;
        case Prehash::Sha512:
            return MBEDTLS_MD_SHA512;
        case Prehash::None:
            break;
    }
    return MBEDTLS_MD_NONE;
}

int rsa_pkcs1_algorithm(Prehash h) {
    return h == Prehash::Sha256   ? KC_SIGN_RSA_PKCS1_SHA256
           : h == Prehash::Sha384 ? KC_SIGN_RSA_PKCS1_SHA384
                                  : KC_SIGN_RSA_PKCS1_SHA512;
}

int rsa_pss_algorithm(Prehash h) {
    return h == Prehash::Sha256   ? KC_SIGN_RSA_PSS_SHA256
           : h == Prehash::Sha384 ? KC_SIGN_RSA_PSS_SHA384
                                  : KC_SIGN_RSA_PSS_SHA512;
}

// The daemon's mbedTLS signs PSS with MGF1 over the message hash and a salt as long as that hash
// (RSA keys of 2048 bits and more always have room for it); any other parameters are refused
// rather than silently signed differently.
Prehash check_pss_params(const CK_MECHANISM& m, Prehash mechanism_hash) {
    if (m.pParameter == nullptr || m.ulParameterLen != sizeof(CK_RSA_PKCS_PSS_PARAMS))
        fail(CKR_MECHANISM_PARAM_INVALID, "RSA-PSS needs CK_RSA_PKCS_PSS_PARAMS");
    CK_RSA_PKCS_PSS_PARAMS p;
    std::memcpy(&p, m.pParameter, sizeof p);
    Prehash h;
    if (!prehash_of_hash_mechanism(p.hashAlg, h))
        fail(CKR_MECHANISM_PARAM_INVALID,
             "RSA-PSS: keychaind signs with SHA-256, SHA-384 or SHA-512 only");
    if (mechanism_hash != Prehash::None && h != mechanism_hash)
        fail(CKR_MECHANISM_PARAM_INVALID, "RSA-PSS: hashAlg differs from the mechanism's hash");
    if (p.mgf != mgf1_for(h))
        fail(CKR_MECHANISM_PARAM_INVALID,
             "RSA-PSS: keychaind uses MGF1 with the message hash only");
    if (p.sLen != prehash_size(h))
        fail(CKR_MECHANISM_PARAM_INVALID, "RSA-PSS: keychaind's salt is the hash length (" +
                                              std::to_string(prehash_size(h)) + " bytes), not " +
                                              std::to_string(p.sLen));
    return h;
}

}  // namespace

class SignOperation::Digest {
  public:
    explicit Digest(Prehash h) {
        mbedtls_md_init(&ctx_);
        const mbedtls_md_info_t* info = mbedtls_md_info_from_type(md_type(h));
        if (info == nullptr || mbedtls_md_setup(&ctx_, info, 0) != 0 ||
            mbedtls_md_starts(&ctx_) != 0) {
            mbedtls_md_free(&ctx_);
            fail(CKR_HOST_MEMORY, "cannot set up the message digest");
        }
        size_ = mbedtls_md_get_size(info);
    }
    ~Digest() { mbedtls_md_free(&ctx_); }
    Digest(const Digest&) = delete;
    Digest& operator=(const Digest&) = delete;

    void update(std::span<const uint8_t> data) {
        if (!data.empty() && mbedtls_md_update(&ctx_, data.data(), data.size()) != 0)
            fail(CKR_FUNCTION_FAILED, "message digest update failed");
    }
    std::vector<uint8_t> finish() {
        std::vector<uint8_t> out(size_);
        if (mbedtls_md_finish(&ctx_, out.data()) != 0)
            fail(CKR_FUNCTION_FAILED, "message digest failed");
        return out;
    }

  private:
    mbedtls_md_context_t ctx_;
    size_t size_ = 0;
};

SignOperation::SignOperation(const CK_MECHANISM& m, const PrivateKeyRef& key) : key_(key) {
    mechanism_ = find_mechanism(m.mechanism);
    if (mechanism_ == nullptr || mechanism_->scheme == Scheme::RsaOaep)
        fail(CKR_MECHANISM_INVALID,
             "mechanism " + std::to_string(m.mechanism) + " cannot sign here");
    if (mechanism_->family != key.family)
        fail(CKR_KEY_TYPE_INCONSISTENT, "the mechanism does not fit the key's type");
    if (!key.can_sign) fail(CKR_KEY_FUNCTION_NOT_PERMITTED, "the key may not sign");
    if (mechanism_->scheme == Scheme::RsaPss) {
        pss_hash_ = check_pss_params(m, mechanism_->prehash);
    } else if (m.ulParameterLen != 0) {
        fail(CKR_MECHANISM_PARAM_INVALID, "this mechanism takes no parameter");
    }
    if (mechanism_->prehash != Prehash::None) {
        digest_ = std::make_unique<Digest>(mechanism_->prehash);
    } else if (mechanism_->scheme == Scheme::RsaPkcs1) {
        collect_limit_ = key.modulus_bytes > 11 ? key.modulus_bytes - 11 : 0;
    } else if (mechanism_->scheme == Scheme::RsaPss) {
        collect_limit_ = prehash_size(pss_hash_);
    } else {
        collect_limit_ = kMaxRawSignInput;
    }
}

SignOperation::~SignOperation() = default;

size_t SignOperation::signature_length() const {
    return key_.family == KeyFamily::Rsa ? key_.modulus_bytes : 2 * key_.ec_order_bytes;
}

void SignOperation::update(std::span<const uint8_t> data) {
    updated_ = true;
    if (digest_) {
        digest_->update(data);
        return;
    }
    if (data.size() > collect_limit_ - collected_.size())
        fail(CKR_DATA_LEN_RANGE, "the input is longer than this mechanism takes (" +
                                     std::to_string(collect_limit_) + " bytes)");
    collected_.insert(collected_.end(), data.begin(), data.end());
}

DaemonSignRequest SignOperation::finish() {
    DaemonSignRequest r;
    r.input = digest_ ? digest_->finish() : std::move(collected_);
    switch (mechanism_->scheme) {
        case Scheme::Ecdsa: {
            // ECDSA uses the leftmost order-size bytes of the hash as a number: a shorter hash is
            // the same number left-padded with zeros, a longer one is cut. So any hash becomes the
            // order's size, which the daemon takes (P-256: 32 bytes, P-384: 48).
            const size_t n = key_.ec_order_bytes;
            if (r.input.empty()) fail(CKR_DATA_LEN_RANGE, "ECDSA needs a hash to sign");
            if (r.input.size() > n) r.input.resize(n);
            if (r.input.size() < n) r.input.insert(r.input.begin(), n - r.input.size(), 0);
            if (n == 32) {
                r.algorithm = KC_SIGN_ECDSA_SHA256;
            } else if (n == 48) {
                r.algorithm = KC_SIGN_ECDSA_SHA384;
            } else {
                fail(CKR_KEY_SIZE_RANGE, "keychaind signs on P-256 and P-384 only");
            }
            break;
        }
        case Scheme::RsaPkcs1:
            if (digest_) {
                r.algorithm = rsa_pkcs1_algorithm(mechanism_->prehash);
            } else {
                // A DigestInfo, or TLS 1.0/1.1's MD5 || SHA-1: the daemon pads what it is given.
                if (r.input.empty()) fail(CKR_DATA_LEN_RANGE, "CKM_RSA_PKCS needs input to sign");
                r.algorithm = KC_SIGN_RSA_PKCS1_RAW;
            }
            break;
        case Scheme::RsaPss:
            if (digest_) {
                r.algorithm = rsa_pss_algorithm(mechanism_->prehash);
            } else {
                if (r.input.size() != prehash_size(pss_hash_))
                    fail(CKR_DATA_LEN_RANGE,
                         "CKM_RSA_PKCS_PSS needs a " + std::to_string(prehash_size(pss_hash_)) +
                             "-byte hash, got " + std::to_string(r.input.size()));
                r.algorithm = rsa_pss_algorithm(pss_hash_);
            }
            break;
        case Scheme::RsaOaep:
            fail(CKR_GENERAL_ERROR, "OAEP is not a signature");
    }
    return r;
}

std::vector<uint8_t> SignOperation::to_pkcs11_signature(std::span<const uint8_t> sig) const {
    if (key_.family == KeyFamily::Rsa) {
        if (sig.size() != key_.modulus_bytes)
            fail(CKR_DEVICE_ERROR,
                 "keychaind sent an RSA signature of " + std::to_string(sig.size()) + " bytes");
        return {sig.begin(), sig.end()};
    }
    try {
        return ecdsa_der_to_raw(sig, key_.ec_order_bytes);
    } catch (const std::exception& e) {
        fail(CKR_DEVICE_ERROR, std::string("keychaind sent a bad ECDSA signature: ") + e.what());
    }
}

}  // namespace keychaind::pkcs11
