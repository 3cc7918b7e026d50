// DER: the TLV the module writes (EC_PARAMS, EC_POINT, SERIAL_NUMBER) and the ECDSA signature it
// turns from the daemon's SEQUENCE { r, s } into PKCS#11's raw r || s.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace keychaind::pkcs11 {

inline constexpr uint8_t kDerInteger = 0x02;
inline constexpr uint8_t kDerOctetString = 0x04;
inline constexpr uint8_t kDerOid = 0x06;

// tag, definite length, content.
std::vector<uint8_t> der_tlv(uint8_t tag, std::span<const uint8_t> content);

// DER SEQUENCE { INTEGER r, INTEGER s } -> r || s, each left-padded to `half` bytes (the curve
// order's size). Throws std::runtime_error on anything else (trailing bytes, negative or
// oversized integers).
std::vector<uint8_t> ecdsa_der_to_raw(std::span<const uint8_t> der, size_t half);

}  // namespace keychaind::pkcs11
