// CryptoBackend: the boundary to the library that does the math (mbedTLS or OpenSSL 3).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/secret_bytes.h"

namespace keychaind {

enum class KeyKind : uint8_t { Aes256 = 1, Rsa = 2, EcP256 = 3, EcP384 = 4, Ed25519 = 5 };
std::string_view key_kind_name(KeyKind k) noexcept;

// Wire values of SIGN's algorithm field; the input is the digest, except for RsaPkcs1Raw (a
// caller-built DigestInfo as PKCS#11's CKM_RSA_PKCS takes it) and Ed25519 (RFC 8032 pure
// Ed25519 hashes inside the signature: the input is the message itself, at most
// kMaxEd25519MessageBytes).
enum class SignAlgorithm : uint8_t {
    RsaPkcs1Sha256 = 1,
    RsaPkcs1Sha384 = 2,
    RsaPkcs1Sha512 = 3,
    RsaPssSha256 = 4,
    RsaPssSha384 = 5,
    RsaPssSha512 = 6,
    EcdsaSha256 = 7,
    EcdsaSha384 = 8,
    EcdsaSha512 = 9,
    RsaPkcs1Raw = 10,
    Ed25519 = 11,
};
// Ed25519's message travels whole in one frame: 16 KiB leaves room in the default 64 KiB frame
// and covers what is signed in practice (TLS 1.3 CertificateVerify input, tokens, small files).
inline constexpr size_t kMaxEd25519MessageBytes = 16 * 1024;
enum class DecryptAlgorithm : uint8_t { RsaOaepSha1 = 1, RsaOaepSha256 = 2 };

bool sign_algorithm_valid(uint8_t v) noexcept;
bool decrypt_algorithm_valid(uint8_t v) noexcept;
std::string_view sign_algorithm_name(SignAlgorithm a) noexcept;
// Digest length the algorithm expects; 0 when the input is not a digest of fixed size
// (rsa-pkcs1-raw: 1..k-11 bytes; ed25519: the message, 0..kMaxEd25519MessageBytes).
size_t sign_algorithm_digest_size(SignAlgorithm a) noexcept;
bool sign_algorithm_is_rsa(SignAlgorithm a) noexcept;
// True when the input is the message itself rather than a digest or DigestInfo (ed25519).
bool sign_algorithm_signs_message(SignAlgorithm a) noexcept;
// True when a key of this kind can make this algorithm's signatures.
bool sign_algorithm_fits(SignAlgorithm a, KeyKind key) noexcept;

// The checks every backend makes, so that each refuses the same input with the same error.
// Before a signature: BadRequest for a digest of the wrong size, an rsa-pkcs1-raw input outside
// 1..k-11 bytes (k = modulus_bytes) or an ed25519 message over kMaxEd25519MessageBytes,
// Unsupported for an algorithm the key cannot do.
void check_sign_request(SignAlgorithm alg, KeyKind key, size_t modulus_bytes, size_t input_size);
// Before writing a signature of up to `need` bytes into `out`: Internal when it does not fit.
void check_signature_room(size_t need, std::span<const uint8_t> out);
// Before RSA-OAEP: Unsupported for a key that is not RSA, BadRequest for a ciphertext that is not
// exactly k bytes.
void check_decrypt_request(KeyKind key, size_t modulus_bytes, size_t ciphertext_size);
// A parsed key the daemon does not take: RSA outside 2048-4096 bits, an EC curve other than P-256
// and P-384, Ed25519 on a backend without it (all Unsupported).
void check_rsa_key_bits(unsigned bits);
[[noreturn]] void throw_unsupported_curve();
// True when a "-----BEGIN" line is anywhere in the input: each backend then reads it as PEM.
bool looks_like_pem(std::span<const uint8_t> in) noexcept;
// AES-256-GCM argument sizes (a short buffer would make a library read past its end).
void check_gcm_sizes(std::span<const uint8_t> key, std::span<const uint8_t> nonce, size_t tag_size,
                     size_t in_size, size_t out_size);

// A parsed private key, ready to sign many times. Thread-safe.
class PrivateKey {
public:
    virtual ~PrivateKey() = default;
    virtual KeyKind kind() const = 0;
    virtual unsigned bits() const = 0;
    virtual const std::vector<uint8_t>& public_key_der() const = 0;  // SubjectPublicKeyInfo
    // The largest signature of any key the daemon takes: RSA-4096.
    static constexpr size_t kMaxSignatureSize = 512;
    // Writes the signature into `out` and returns its length; kMaxSignatureSize bytes fit every
    // key, so a caller can sign into a fixed array on its stack (the daemon's SIGN allocates
    // nothing of its own). Throws KeychainError (BadRequest for a digest that does not fit,
    // Unsupported for an algorithm the key cannot do, Internal for an `out` too small).
    virtual size_t sign_into(SignAlgorithm alg, std::span<const uint8_t> digest, std::span<uint8_t> out) const = 0;
    // The same into a new vector, for callers off the hot path.
    std::vector<uint8_t> sign(SignAlgorithm alg, std::span<const uint8_t> digest) const;
    virtual SecretBytes decrypt(DecryptAlgorithm alg, std::span<const uint8_t> ciphertext) const = 0;
};

// An AES-256 key-encryption key, wherever it lives: locked memory (Key::aes) or a token, which
// does the cipher itself. Nonce 12 bytes, tag 16, ciphertext as long as the plaintext. Thread-safe.
class AesKey {
public:
    virtual ~AesKey() = default;
    // Throws KeychainError (TokenError when a token fails).
    virtual void gcm_encrypt(std::span<const uint8_t> nonce, std::span<const uint8_t> aad,
                             std::span<const uint8_t> plaintext, std::span<uint8_t> ciphertext,
                             std::span<uint8_t> tag) const = 0;
    // false when the tag does not authenticate (plaintext is then zeroed); throws KeychainError
    // for anything else.
    virtual bool gcm_decrypt(std::span<const uint8_t> nonce, std::span<const uint8_t> aad,
                             std::span<const uint8_t> ciphertext, std::span<const uint8_t> tag,
                             std::span<uint8_t> plaintext) const = 0;
};

class CryptoBackend {
public:
    virtual ~CryptoBackend() = default;
    virtual std::string_view name() const = 0;
    // PEM (PKCS#1, PKCS#8, SEC1) or DER. Only RSA 2048-4096, EC P-256/P-384 and (OpenSSL only)
    // Ed25519 in PKCS#8 are accepted; anything else throws KeychainError(Unsupported) naming
    // what was found.
    virtual std::unique_ptr<PrivateKey> parse_private_key(std::span<const uint8_t> pem_or_der) const = 0;
    // A PEM (or DER) certificate chain; each certificate's DER, leaf first.
    virtual std::vector<std::vector<uint8_t>> parse_certificates(std::span<const uint8_t> pem) const = 0;
    // SubjectPublicKeyInfo DER of a certificate.
    virtual std::vector<uint8_t> certificate_public_key(std::span<const uint8_t> cert_der) const = 0;
    // `digest` is the message for ed25519; false for an algorithm the backend cannot verify.
    virtual bool verify(std::span<const uint8_t> spki_der, SignAlgorithm alg,
                        std::span<const uint8_t> digest, std::span<const uint8_t> signature) const = 0;
    virtual void random(std::span<uint8_t> out) const = 0;
    virtual void sha256(std::span<const uint8_t> in, uint8_t out[32]) const = 0;
    // AES-256-GCM with a 12-byte nonce and a 16-byte tag.
    virtual void aes256_gcm_encrypt(std::span<const uint8_t> key, std::span<const uint8_t> nonce,
                                    std::span<const uint8_t> aad, std::span<const uint8_t> plaintext,
                                    std::span<uint8_t> ciphertext, std::span<uint8_t> tag) const = 0;
    // false when the tag does not authenticate; plaintext is then zeroed.
    virtual bool aes256_gcm_decrypt(std::span<const uint8_t> key, std::span<const uint8_t> nonce,
                                    std::span<const uint8_t> aad, std::span<const uint8_t> ciphertext,
                                    std::span<const uint8_t> tag, std::span<uint8_t> plaintext) const = 0;
};

// The backend chosen at build time (CMake option KEYCHAIND_CRYPTO_BACKEND).
const CryptoBackend& crypto_backend();

// Makes OpenSSL wipe every block it frees (its key decoders leave copies of key bytes, a private
// scalar among them, in memory they free without clearing). Must run before OpenSSL allocates
// anything: first thing in main. False when it is too late.
bool wipe_openssl_frees();
// Frees OpenSSL's state for the calling thread (its error queue, among others). A thread that
// may still be ending when the process exits calls it last: otherwise the state is released by a
// thread-exit handler that can run after OpenSSL's own exit-time clean-up, and is lost.
void release_thread_crypto_state();
// A compiled-in backend by its option value, "mbedtls" or "openssl" (both are always built, so
// tests can run each and compare them); nullptr for any other name.
const CryptoBackend* crypto_backend_named(std::string_view name);
// The two backends themselves; the first use of OpenSSL's sets up its secure heap and throws
// KeychainError(Internal) when that is impossible.
const CryptoBackend& mbedtls_crypto_backend();
const CryptoBackend& openssl_crypto_backend();

}  // namespace keychaind
