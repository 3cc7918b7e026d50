// PublicKeyParts: the PKCS#11 attributes of a public key, taken from its SubjectPublicKeyInfo.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace keychaind::pkcs11 {

enum class KeyFamily { Rsa, Ec };

struct PublicKeyParts {
    KeyFamily family = KeyFamily::Rsa;
    unsigned bits = 0;                     // modulus bits, or the curve's size
    std::vector<uint8_t> modulus;          // RSA: big-endian, no leading zero
    std::vector<uint8_t> public_exponent;  // RSA
    std::vector<uint8_t> ec_params;        // EC: the named curve's DER OBJECT IDENTIFIER
    std::vector<uint8_t> ec_point;         // EC: DER OCTET STRING holding 04 || x || y
    size_t ec_order_bytes = 0;             // EC: size of r and of s in a raw signature
};

// Throws std::runtime_error when the SPKI does not parse, or is neither RSA nor an EC key on a
// named prime curve.
PublicKeyParts parse_public_key(std::span<const uint8_t> spki);

}  // namespace keychaind::pkcs11
