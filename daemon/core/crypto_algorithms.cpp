// Names and properties of the wire's algorithm and key-kind values, the input checks every
// backend shares, and PrivateKey::sign (sign_into a vector).
#include <string>
#include <vector>

#include "core/crypto_backend.h"
#include "core/error.h"

namespace keychaind {

std::string_view key_kind_name(KeyKind k) noexcept {
    switch (k) {
        case KeyKind::Aes256: return "aes-256";
        case KeyKind::Rsa: return "rsa";
        case KeyKind::EcP256: return "ec-p256";
        case KeyKind::EcP384: return "ec-p384";
        case KeyKind::Ed25519: return "ed25519";
    }
    return "unknown";
}

bool sign_algorithm_valid(uint8_t v) noexcept { return v >= 1 && v <= 11; }
bool decrypt_algorithm_valid(uint8_t v) noexcept { return v == 1 || v == 2; }

std::string_view sign_algorithm_name(SignAlgorithm a) noexcept {
    switch (a) {
        case SignAlgorithm::RsaPkcs1Sha256: return "rsa-pkcs1-sha256";
        case SignAlgorithm::RsaPkcs1Sha384: return "rsa-pkcs1-sha384";
        case SignAlgorithm::RsaPkcs1Sha512: return "rsa-pkcs1-sha512";
        case SignAlgorithm::RsaPssSha256: return "rsa-pss-sha256";
        case SignAlgorithm::RsaPssSha384: return "rsa-pss-sha384";
        case SignAlgorithm::RsaPssSha512: return "rsa-pss-sha512";
        case SignAlgorithm::EcdsaSha256: return "ecdsa-sha256";
        case SignAlgorithm::EcdsaSha384: return "ecdsa-sha384";
        case SignAlgorithm::EcdsaSha512: return "ecdsa-sha512";
        case SignAlgorithm::RsaPkcs1Raw: return "rsa-pkcs1-raw";
        case SignAlgorithm::Ed25519: return "ed25519";
    }
    return "unknown";
}

size_t sign_algorithm_digest_size(SignAlgorithm a) noexcept {
    switch (a) {
        case SignAlgorithm::RsaPkcs1Sha256:
        case SignAlgorithm::RsaPssSha256:
        case SignAlgorithm::EcdsaSha256: return 32;
        case SignAlgorithm::RsaPkcs1Sha384:
        case SignAlgorithm::RsaPssSha384:
        case SignAlgorithm::EcdsaSha384: return 48;
        case SignAlgorithm::RsaPkcs1Sha512:
        case SignAlgorithm::RsaPssSha512:
        case SignAlgorithm::EcdsaSha512: return 64;
        case SignAlgorithm::RsaPkcs1Raw:
        case SignAlgorithm::Ed25519: return 0;
    }
    return 0;
}

bool sign_algorithm_is_rsa(SignAlgorithm a) noexcept {
    return a != SignAlgorithm::EcdsaSha256 && a != SignAlgorithm::EcdsaSha384 &&
           a != SignAlgorithm::EcdsaSha512 && a != SignAlgorithm::Ed25519;
}

bool sign_algorithm_signs_message(SignAlgorithm a) noexcept { return a == SignAlgorithm::Ed25519; }

bool sign_algorithm_fits(SignAlgorithm a, KeyKind key) noexcept {
    if (a == SignAlgorithm::Ed25519) return key == KeyKind::Ed25519;
    if (sign_algorithm_is_rsa(a)) return key == KeyKind::Rsa;
    return key == KeyKind::EcP256 || key == KeyKind::EcP384;
}

void check_sign_request(SignAlgorithm alg, KeyKind key, size_t modulus_bytes, size_t input_size) {
    const size_t want = sign_algorithm_digest_size(alg);
    if (want != 0 && input_size != want)
        throw KeychainError(ErrorCode::BadRequest, std::string(sign_algorithm_name(alg)) +
                                                       " needs a " + std::to_string(want) +
                                                       "-byte digest, got " +
                                                       std::to_string(input_size));
    // An empty message is valid Ed25519 (RFC 8032 TEST 1); SIGN on the wire still needs DATA.
    if (sign_algorithm_signs_message(alg) && input_size > kMaxEd25519MessageBytes)
        throw KeychainError(ErrorCode::BadRequest,
                            std::string(sign_algorithm_name(alg)) + " signs a message of at most " +
                                std::to_string(kMaxEd25519MessageBytes) + " bytes, got " +
                                std::to_string(input_size));
    if (!sign_algorithm_fits(alg, key))
        throw KeychainError(ErrorCode::Unsupported, std::string(sign_algorithm_name(alg)) +
                                                        " does not fit a " +
                                                        std::string(key_kind_name(key)) + " key");
    // PKCS#1 v1.5 type 1 padding needs at least 11 bytes of the modulus.
    if (alg == SignAlgorithm::RsaPkcs1Raw && (input_size == 0 || input_size + 11 > modulus_bytes))
        throw KeychainError(ErrorCode::BadRequest, "rsa-pkcs1-raw input must be 1.." +
                                                       std::to_string(modulus_bytes - 11) +
                                                       " bytes");
}

void check_signature_room(size_t need, std::span<const uint8_t> out) {
    if (out.size() < need)
        throw KeychainError(ErrorCode::Internal, "a signature of up to " + std::to_string(need) +
                                                     " bytes does not fit a buffer of " + std::to_string(out.size()));
}

std::vector<uint8_t> PrivateKey::sign(SignAlgorithm alg, std::span<const uint8_t> digest) const {
    std::vector<uint8_t> sig(kMaxSignatureSize);
    sig.resize(sign_into(alg, digest, sig));
    return sig;
}

void check_decrypt_request(KeyKind key, size_t modulus_bytes, size_t ciphertext_size) {
    if (key != KeyKind::Rsa) throw KeychainError(ErrorCode::Unsupported, "decrypt needs an RSA key");
    if (ciphertext_size != modulus_bytes)
        throw KeychainError(ErrorCode::BadRequest, "RSA-OAEP ciphertext must be " +
                                                       std::to_string(modulus_bytes) +
                                                       " bytes, got " +
                                                       std::to_string(ciphertext_size));
}

void check_rsa_key_bits(unsigned bits) {
    if (bits < 2048 || bits > 4096)
        throw KeychainError(ErrorCode::Unsupported, "RSA key of " + std::to_string(bits) +
                                                        " bits; only 2048 to 4096 are accepted");
}

void throw_unsupported_curve() {
    throw KeychainError(ErrorCode::Unsupported, "EC key on an unsupported curve; only P-256 and P-384");
}

bool looks_like_pem(std::span<const uint8_t> in) noexcept {
    const std::string_view s(reinterpret_cast<const char*>(in.data()), in.size());
    return s.find("-----BEGIN") != std::string_view::npos;
}

void check_gcm_sizes(std::span<const uint8_t> key, std::span<const uint8_t> nonce, size_t tag_size,
                     size_t in_size, size_t out_size) {
    if (key.size() != 32)
        throw KeychainError(ErrorCode::BadRequest,
                            "AES-256-GCM needs a 32-byte key, got " + std::to_string(key.size()));
    if (nonce.size() != 12 || tag_size != 16 || out_size != in_size)
        throw KeychainError(ErrorCode::Internal, "AES-GCM called with a bad nonce, tag or output size");
}

}  // namespace keychaind
