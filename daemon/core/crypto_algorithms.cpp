// Names and properties of the wire's algorithm and key-kind values.
#include "core/crypto_backend.h"

namespace keychaind {

std::string_view key_kind_name(KeyKind k) noexcept {
    switch (k) {
        case KeyKind::Aes256: return "aes-256";
        case KeyKind::Rsa: return "rsa";
        case KeyKind::EcP256: return "ec-p256";
        case KeyKind::EcP384: return "ec-p384";
    }
    return "unknown";
}

bool sign_algorithm_valid(uint8_t v) noexcept { return v >= 1 && v <= 10; }
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
        case SignAlgorithm::RsaPkcs1Raw: return 0;
    }
    return 0;
}

bool sign_algorithm_is_rsa(SignAlgorithm a) noexcept {
    return a != SignAlgorithm::EcdsaSha256 && a != SignAlgorithm::EcdsaSha384 &&
           a != SignAlgorithm::EcdsaSha512;
}

}  // namespace keychaind
