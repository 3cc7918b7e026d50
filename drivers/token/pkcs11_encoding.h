// Byte formats between PKCS#11 and keychaind: DigestInfo prefixes, ECDSA r‖s to DER, and the
// SubjectPublicKeyInfo of a token key built from its attributes, as the software backend would.
#pragma once

#include <p11-kit/pkcs11.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/crypto_backend.h"
#include "core/secret_bytes.h"

namespace keychaind::token {

// The DER DigestInfo header that precedes a SHA-256/384/512 digest in an RSA PKCS#1 v1.5
// signature (RFC 8017 §9.2, note 1); empty for any other algorithm.
std::span<const uint8_t> digest_info_prefix(SignAlgorithm alg) noexcept;

// PKCS#11's ECDSA signature, r‖s with each half `field_size` bytes, as the DER
// SEQUENCE { INTEGER r, INTEGER s } that mbedtls_ecdsa_write_signature writes (minimal integers, a
// 0x00 before a high bit). Throws TokenFault when raw is not exactly 2 × field_size bytes or r or s
// is zero.
std::vector<uint8_t> ecdsa_raw_to_der(std::span<const uint8_t> raw, size_t field_size);

// Bytes of one coordinate (and of each half of an ECDSA signature): 32 for P-256, 48 for P-384.
size_t ec_field_size(KeyKind kind) noexcept;

struct TokenPublicKey {
    std::vector<uint8_t> spki;  // SubjectPublicKeyInfo DER, as mbedtls_pk_write_pubkey_der writes it
    KeyKind kind = KeyKind::Rsa;
    unsigned bits = 0;
};

// From CKA_MODULUS and CKA_PUBLIC_EXPONENT (big-endian). Throws TokenFault when they do not make a
// valid key, KeychainError(Unsupported) for a size outside 2048..4096.
TokenPublicKey public_key_from_rsa(std::span<const uint8_t> modulus, std::span<const uint8_t> exponent);
// From CKA_EC_PARAMS (the named curve's OID) and CKA_EC_POINT (a DER OCTET STRING around the
// uncompressed point; a bare point is accepted too). Throws KeychainError(Unsupported) for a curve
// other than P-256 and P-384, TokenFault for a point that is not on it.
TokenPublicKey public_key_from_ec(std::span<const uint8_t> ec_params, std::span<const uint8_t> ec_point);
// From a SubjectPublicKeyInfo (CKA_PUBLIC_KEY_INFO, a certificate's): parsed and written again,
// so the key id does not depend on how the token encoded it.
TokenPublicKey public_key_from_spki(std::span<const uint8_t> spki);

// EME-OAEP decoding (RFC 8017 §7.1.2, step 3) of the k-byte block a raw RSA decryption
// (CKM_RSA_X_509) gives, with SHA-1 (hash_size 20) or SHA-256 (32) for MGF1 and the (empty)
// label's hash. nullopt when it does not decode; every check runs whatever the others found.
std::optional<SecretBytes> oaep_decode(std::span<const uint8_t> em, size_t hash_size);

// A CK_TOKEN_INFO text field (blank-padded, not NUL-terminated) without its padding.
std::string padded_text(const CK_UTF8CHAR* field, size_t size);

}  // namespace keychaind::token
