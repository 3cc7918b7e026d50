// CryptoBackend on mbedTLS 2.28.
#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>

#include <cstring>
#include <mutex>
#include <string>

#include "core/crypto_backend.h"
#include "core/error.h"

namespace keychaind {
namespace {

std::string mbed_error(int rc) { return "mbedTLS error -0x" + [&] {
        char b[16];
        snprintf(b, sizeof b, "%04x", static_cast<unsigned>(-rc));
        return std::string(b);
    }(); }

// One DRBG per thread: mbedtls_ctr_drbg_random is not safe to share without a lock.
struct ThreadRng {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    ThreadRng() {
        mbedtls_entropy_init(&entropy);
        mbedtls_ctr_drbg_init(&drbg);
        static const char kPers[] = "keychaind";
        if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                  reinterpret_cast<const unsigned char*>(kPers), sizeof kPers) != 0)
            throw KeychainError(ErrorCode::Internal, "cannot seed the random generator");
    }
    ~ThreadRng() {
        mbedtls_ctr_drbg_free(&drbg);
        mbedtls_entropy_free(&entropy);
    }
};
ThreadRng& thread_rng() {
    thread_local ThreadRng rng;
    return rng;
}
int rng_callback(void*, unsigned char* out, size_t n) {
    return mbedtls_ctr_drbg_random(&thread_rng().drbg, out, n);
}

mbedtls_md_type_t md_of(SignAlgorithm a) {
    switch (sign_algorithm_digest_size(a)) {
        case 32: return MBEDTLS_MD_SHA256;
        case 48: return MBEDTLS_MD_SHA384;
        case 64: return MBEDTLS_MD_SHA512;
        default: return MBEDTLS_MD_NONE;
    }
}
bool is_pss(SignAlgorithm a) {
    return a == SignAlgorithm::RsaPssSha256 || a == SignAlgorithm::RsaPssSha384 ||
           a == SignAlgorithm::RsaPssSha512;
}

// PEM input must be NUL-terminated for mbedTLS; the copy lives in the secure arena.
SecretBytes nul_terminated(std::span<const uint8_t> in) {
    SecretBytes b(in.size() + 1);
    std::memcpy(b.data(), in.data(), in.size());
    return b;
}

struct MpiHolder {
    mbedtls_mpi mpi;
    MpiHolder() { mbedtls_mpi_init(&mpi); }
    ~MpiHolder() { mbedtls_mpi_free(&mpi); }
    MpiHolder(const MpiHolder&) = delete;
    MpiHolder& operator=(const MpiHolder&) = delete;
};

std::vector<uint8_t> write_spki(mbedtls_pk_context* pk) {
    std::vector<uint8_t> buf(2048);
    int n = mbedtls_pk_write_pubkey_der(pk, buf.data(), buf.size());
    if (n <= 0) throw KeychainError(ErrorCode::Internal, "cannot encode public key: " + mbed_error(n));
    return {buf.end() - n, buf.end()};
}

// True for a PKCS#8 PrivateKeyInfo (or RFC 8410 OneAsymmetricKey) whose algorithm is
// id-Ed25519 (1.3.101.112): mbedTLS 2.28 knows no such OID and would only say "unknown algorithm".
bool is_ed25519_pkcs8_der(const unsigned char* p, size_t n) {
    static constexpr unsigned char kEd25519Oid[] = {0x2b, 0x65, 0x70};
    auto* q = const_cast<unsigned char*>(p);
    const unsigned char* end = p + n;
    size_t len = 0;
    int version = 0;
    mbedtls_asn1_buf oid{};
    mbedtls_asn1_buf params{};
    return mbedtls_asn1_get_tag(&q, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) == 0 &&
           mbedtls_asn1_get_int(&q, end, &version) == 0 &&
           mbedtls_asn1_get_alg(&q, end, &oid, &params) == 0 && oid.len == sizeof kEd25519Oid &&
           std::memcmp(oid.p, kEd25519Oid, sizeof kEd25519Oid) == 0;
}

// The same for PEM input: the first "PRIVATE KEY" block, decoded into mbedTLS's buffer, which
// mbedtls_pem_free zeroizes. `z` is NUL-terminated.
bool is_ed25519_pkcs8_pem(const SecretBytes& z) {
    mbedtls_pem_context pem;
    mbedtls_pem_init(&pem);
    size_t used = 0;
    const bool ed25519 =
        mbedtls_pem_read_buffer(&pem, "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----",
                                z.data(), nullptr, 0, &used) == 0 &&
        is_ed25519_pkcs8_der(pem.buf, pem.buflen);
    mbedtls_pem_free(&pem);
    return ed25519;
}

[[noreturn]] void throw_no_ed25519() {
    throw KeychainError(ErrorCode::Unsupported,
                        "Ed25519 key: the mbedtls backend has no Ed25519 (mbedTLS 2.28); "
                        "build keychaind with KEYCHAIND_CRYPTO_BACKEND=openssl for Ed25519 keys");
}

class MbedPrivateKey final : public PrivateKey {
public:
    explicit MbedPrivateKey(std::span<const uint8_t> input) {
        mbedtls_pk_init(&pk_);
        int rc;
        bool ed25519 = false;
        if (looks_like_pem(input)) {
            SecretBytes z = nul_terminated(input);
            rc = mbedtls_pk_parse_key(&pk_, z.data(), z.size(), nullptr, 0);
            ed25519 = rc != 0 && is_ed25519_pkcs8_pem(z);
        } else {
            rc = mbedtls_pk_parse_key(&pk_, input.data(), input.size(), nullptr, 0);
            ed25519 = rc != 0 && is_ed25519_pkcs8_der(input.data(), input.size());
        }
        if (rc != 0) {
            mbedtls_pk_free(&pk_);
            if (ed25519) throw_no_ed25519();
            throw KeychainError(ErrorCode::BadRequest,
                                "private key does not parse as PEM/DER PKCS#1, PKCS#8 or SEC1 "
                                "(unencrypted) (" + mbed_error(rc) + ")");
        }
        try {
            classify();
            spki_ = write_spki(&pk_);
        } catch (...) {
            mbedtls_pk_free(&pk_);
            throw;
        }
    }
    ~MbedPrivateKey() override { mbedtls_pk_free(&pk_); }
    MbedPrivateKey(const MbedPrivateKey&) = delete;
    MbedPrivateKey& operator=(const MbedPrivateKey&) = delete;

    KeyKind kind() const override { return kind_; }
    unsigned bits() const override { return bits_; }
    const std::vector<uint8_t>& public_key_der() const override { return spki_; }

    size_t sign_into(SignAlgorithm alg, std::span<const uint8_t> digest, std::span<uint8_t> out) const override {
        const bool rsa_alg = sign_algorithm_is_rsa(alg);
        check_sign_request(alg, kind_, modulus_bytes(), digest.size());
        check_signature_room(rsa_alg ? modulus_bytes() : MBEDTLS_ECDSA_MAX_LEN, out);
        // RSA keeps the padding mode in the context and ECP may fill its comb table lazily:
        // both mutate the context, so one signature at a time per key.
        std::lock_guard lk(mu_);
        if (rsa_alg) {
            mbedtls_rsa_context* rsa = mbedtls_pk_rsa(pk_);
            int rc;
            // The padding mode stays in the context: PSS and OAEP set V21, and mbedTLS then
            // refuses PKCS#1 v1.5 signatures until it is set back.
            if (!is_pss(alg)) mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V15, MBEDTLS_MD_NONE);
            if (alg == SignAlgorithm::RsaPkcs1Raw) {
                rc = mbedtls_rsa_rsassa_pkcs1_v15_sign(rsa, rng_callback, nullptr,
                                                       MBEDTLS_RSA_PRIVATE, MBEDTLS_MD_NONE,
                                                       static_cast<unsigned>(digest.size()),
                                                       digest.data(), out.data());
            } else if (is_pss(alg)) {
                mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, md_of(alg));
                rc = mbedtls_rsa_rsassa_pss_sign(rsa, rng_callback, nullptr, MBEDTLS_RSA_PRIVATE,
                                                 md_of(alg), 0, digest.data(), out.data());
            } else {
                rc = mbedtls_rsa_rsassa_pkcs1_v15_sign(rsa, rng_callback, nullptr,
                                                       MBEDTLS_RSA_PRIVATE, md_of(alg), 0,
                                                       digest.data(), out.data());
            }
            if (rc != 0) throw KeychainError(ErrorCode::Internal, "RSA sign failed: " + mbed_error(rc));
            return mbedtls_rsa_get_len(rsa);
        }
        size_t len = 0;
        int rc = mbedtls_ecdsa_write_signature(mbedtls_pk_ec(pk_), md_of(alg), digest.data(),
                                               digest.size(), out.data(), &len, rng_callback,
                                               nullptr);
        if (rc != 0) throw KeychainError(ErrorCode::Internal, "ECDSA sign failed: " + mbed_error(rc));
        return len;
    }

    SecretBytes decrypt(DecryptAlgorithm alg, std::span<const uint8_t> ct) const override {
        check_decrypt_request(kind_, modulus_bytes(), ct.size());
        std::lock_guard lk(mu_);
        mbedtls_rsa_context* rsa = mbedtls_pk_rsa(pk_);
        const size_t k = mbedtls_rsa_get_len(rsa);
        const mbedtls_md_type_t md =
            alg == DecryptAlgorithm::RsaOaepSha1 ? MBEDTLS_MD_SHA1 : MBEDTLS_MD_SHA256;
        mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, md);
        SecretBytes out(k);
        size_t olen = 0;
        int rc = mbedtls_rsa_rsaes_oaep_decrypt(rsa, rng_callback, nullptr, MBEDTLS_RSA_PRIVATE,
                                                nullptr, 0, &olen, ct.data(), out.data(), out.size());
        if (rc != 0) throw KeychainError(ErrorCode::BadRequest, "RSA-OAEP decryption failed");
        out.truncate(olen);
        return out;
    }

private:
    size_t modulus_bytes() const {
        return kind_ == KeyKind::Rsa ? mbedtls_rsa_get_len(mbedtls_pk_rsa(pk_)) : 0;
    }
    void classify() {
        switch (mbedtls_pk_get_type(&pk_)) {
            case MBEDTLS_PK_RSA: {
                kind_ = KeyKind::Rsa;
                bits_ = static_cast<unsigned>(mbedtls_pk_get_bitlen(&pk_));
                check_rsa_key_bits(bits_);
                return;
            }
            case MBEDTLS_PK_ECKEY:
            case MBEDTLS_PK_ECKEY_DH:
            case MBEDTLS_PK_ECDSA: {
                const auto gid = mbedtls_pk_ec(pk_)->grp.id;
                if (gid == MBEDTLS_ECP_DP_SECP256R1) {
                    kind_ = KeyKind::EcP256;
                    bits_ = 256;
                } else if (gid == MBEDTLS_ECP_DP_SECP384R1) {
                    kind_ = KeyKind::EcP384;
                    bits_ = 384;
                } else {
                    throw_unsupported_curve();
                }
                return;
            }
            default:
                throw KeychainError(ErrorCode::Unsupported, std::string("unsupported key type ") +
                                                                mbedtls_pk_get_name(&pk_));
        }
    }

    mutable mbedtls_pk_context pk_;
    mutable std::mutex mu_;
    KeyKind kind_ = KeyKind::Rsa;
    unsigned bits_ = 0;
    std::vector<uint8_t> spki_;
};

// mbedTLS reads an ECDSA signature as BER: a long-form or zero-padded length, or an INTEGER
// without the zero byte its sign needs, still verifies. Only DER is a signature (else each
// signature has many encodings): it must be the DER that its own r and s write.
bool is_der_ecdsa_signature(std::span<const uint8_t> sig) {
    auto* p = const_cast<unsigned char*>(sig.data());
    const unsigned char* end = sig.data() + sig.size();
    size_t len = 0;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return false;
    MpiHolder r, s;
    if (mbedtls_asn1_get_mpi(&p, end, &r.mpi) != 0 || mbedtls_asn1_get_mpi(&p, end, &s.mpi) != 0 ||
        p != end)
        return false;
    unsigned char der[MBEDTLS_ECDSA_MAX_LEN];
    unsigned char* w = der + sizeof der;
    int n = 0, k;
    if ((k = mbedtls_asn1_write_mpi(&w, der, &s.mpi)) < 0) return false;
    n += k;
    if ((k = mbedtls_asn1_write_mpi(&w, der, &r.mpi)) < 0) return false;
    n += k;
    if ((k = mbedtls_asn1_write_len(&w, der, static_cast<size_t>(n))) < 0) return false;
    n += k;
    if ((k = mbedtls_asn1_write_tag(&w, der, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0)
        return false;
    n += k;
    return static_cast<size_t>(n) == sig.size() && std::memcmp(w, sig.data(), sig.size()) == 0;
}

struct PkHolder {
    mbedtls_pk_context pk;
    PkHolder() { mbedtls_pk_init(&pk); }
    ~PkHolder() { mbedtls_pk_free(&pk); }
};
struct CrtHolder {
    mbedtls_x509_crt crt;
    CrtHolder() { mbedtls_x509_crt_init(&crt); }
    ~CrtHolder() { mbedtls_x509_crt_free(&crt); }
};

class MbedBackend final : public CryptoBackend {
public:
    std::string_view name() const override { return "mbedtls-2.28"; }

    std::unique_ptr<PrivateKey> parse_private_key(std::span<const uint8_t> in) const override {
        return std::make_unique<MbedPrivateKey>(in);
    }

    std::vector<std::vector<uint8_t>> parse_certificates(std::span<const uint8_t> in) const override {
        CrtHolder h;
        int rc;
        if (looks_like_pem(in)) {
            std::vector<uint8_t> z(in.begin(), in.end());
            z.push_back(0);
            rc = mbedtls_x509_crt_parse(&h.crt, z.data(), z.size());
        } else {
            rc = mbedtls_x509_crt_parse_der(&h.crt, in.data(), in.size());
        }
        if (rc != 0)
            throw KeychainError(ErrorCode::BadRequest,
                                rc > 0 ? std::to_string(rc) + " certificate(s) in the chain do not parse"
                                       : "certificate does not parse (" + mbed_error(rc) + ")");
        std::vector<std::vector<uint8_t>> out;
        for (const mbedtls_x509_crt* c = &h.crt; c != nullptr && c->raw.len != 0; c = c->next)
            out.emplace_back(c->raw.p, c->raw.p + c->raw.len);
        if (out.empty()) throw KeychainError(ErrorCode::BadRequest, "no certificate found");
        return out;
    }

    std::vector<uint8_t> certificate_public_key(std::span<const uint8_t> der) const override {
        CrtHolder h;
        int rc = mbedtls_x509_crt_parse_der(&h.crt, der.data(), der.size());
        if (rc != 0) throw KeychainError(ErrorCode::BadRequest, "certificate does not parse");
        return write_spki(&h.crt.pk);
    }

    bool verify(std::span<const uint8_t> spki, SignAlgorithm alg, std::span<const uint8_t> digest,
                std::span<const uint8_t> sig) const override {
        // With a hash named, mbedTLS reads that hash's length from the digest, whatever its size.
        // No Ed25519 in mbedTLS 2.28 (its SPKI does not parse either): never a valid signature.
        if (alg == SignAlgorithm::Ed25519) return false;
        const size_t want = sign_algorithm_digest_size(alg);
        if (want != 0 && digest.size() != want) return false;
        PkHolder h;
        if (mbedtls_pk_parse_public_key(&h.pk, spki.data(), spki.size()) != 0) return false;
        // mbedtls_pk_verify checks the scheme of the key's type, whatever algorithm was asked for.
        if ((mbedtls_pk_get_type(&h.pk) == MBEDTLS_PK_RSA) != sign_algorithm_is_rsa(alg)) return false;
        const mbedtls_md_type_t md = md_of(alg);
        if (alg == SignAlgorithm::RsaPkcs1Raw) {
            mbedtls_rsa_context* rsa = mbedtls_pk_rsa(h.pk);
            if (sig.size() != mbedtls_rsa_get_len(rsa)) return false;
            return mbedtls_rsa_rsassa_pkcs1_v15_verify(rsa, nullptr, nullptr, MBEDTLS_RSA_PUBLIC,
                                                       MBEDTLS_MD_NONE,
                                                       static_cast<unsigned>(digest.size()),
                                                       digest.data(), sig.data()) == 0;
        }
        if (is_pss(alg)) {
            // The salt is as long as the hash, as when signing (TLS 1.3 requires it).
            mbedtls_pk_rsassa_pss_options opts{md, static_cast<int>(want)};
            return mbedtls_pk_verify_ext(MBEDTLS_PK_RSASSA_PSS, &opts, &h.pk, md, digest.data(),
                                         digest.size(), sig.data(), sig.size()) == 0;
        }
        if (!sign_algorithm_is_rsa(alg) && !is_der_ecdsa_signature(sig)) return false;
        return mbedtls_pk_verify(&h.pk, md, digest.data(), digest.size(), sig.data(), sig.size()) == 0;
    }

    void random(std::span<uint8_t> out) const override {
        if (rng_callback(nullptr, out.data(), out.size()) != 0)
            throw KeychainError(ErrorCode::Internal, "random generator failed");
    }

    void sha256(std::span<const uint8_t> in, uint8_t out[32]) const override {
        mbedtls_sha256_ret(in.data(), in.size(), out, 0);
    }

    // mbedTLS reads key, nonce and tag by the lengths it is told: check_gcm_sizes first.
    void aes256_gcm_encrypt(std::span<const uint8_t> key, std::span<const uint8_t> nonce,
                            std::span<const uint8_t> aad, std::span<const uint8_t> pt,
                            std::span<uint8_t> ct, std::span<uint8_t> tag) const override {
        check_gcm_sizes(key, nonce, tag.size(), pt.size(), ct.size());
        mbedtls_gcm_context g;
        mbedtls_gcm_init(&g);
        int rc = mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key.data(), 256);
        if (rc == 0)
            rc = mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT, pt.size(), nonce.data(),
                                           nonce.size(), aad.data(), aad.size(), pt.data(),
                                           ct.data(), tag.size(), tag.data());
        mbedtls_gcm_free(&g);
        if (rc != 0) throw KeychainError(ErrorCode::Internal, "AES-GCM failed: " + mbed_error(rc));
    }

    bool aes256_gcm_decrypt(std::span<const uint8_t> key, std::span<const uint8_t> nonce,
                            std::span<const uint8_t> aad, std::span<const uint8_t> ct,
                            std::span<const uint8_t> tag, std::span<uint8_t> pt) const override {
        check_gcm_sizes(key, nonce, tag.size(), ct.size(), pt.size());
        mbedtls_gcm_context g;
        mbedtls_gcm_init(&g);
        int rc = mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key.data(), 256);
        if (rc == 0)
            rc = mbedtls_gcm_auth_decrypt(&g, ct.size(), nonce.data(), nonce.size(), aad.data(),
                                          aad.size(), tag.data(), tag.size(), ct.data(), pt.data());
        mbedtls_gcm_free(&g);
        if (rc != 0) secure_wipe(pt.data(), pt.size());
        return rc == 0;
    }
};

}  // namespace

const CryptoBackend& mbedtls_crypto_backend() {
    static const MbedBackend backend;
    return backend;
}

}  // namespace keychaind
