// DER TLV writing and ECDSA signature conversion, with mbedTLS's ASN.1 reader.
#include "der_codec.h"

#include <mbedtls/asn1.h>

#include <stdexcept>

namespace keychaind::pkcs11 {

std::vector<uint8_t> der_tlv(uint8_t tag, std::span<const uint8_t> content) {
    std::vector<uint8_t> out{tag};
    const size_t n = content.size();
    if (n < 0x80) {
        out.push_back(static_cast<uint8_t>(n));
    } else {
        uint8_t len_bytes[sizeof(size_t)];
        size_t count = 0;
        for (size_t v = n; v != 0; v >>= 8) len_bytes[count++] = static_cast<uint8_t>(v & 0xff);
        out.push_back(static_cast<uint8_t>(0x80 | count));
        while (count > 0) out.push_back(len_bytes[--count]);
    }
    out.insert(out.end(), content.begin(), content.end());
    return out;
}

std::vector<uint8_t> ecdsa_der_to_raw(std::span<const uint8_t> der, size_t half) {
    auto* p = const_cast<unsigned char*>(der.data());
    const unsigned char* const end = der.data() + der.size();
    size_t len = 0;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) !=
            0 ||
        p + len != end)
        throw std::runtime_error("ECDSA signature is not one DER SEQUENCE");
    std::vector<uint8_t> raw(2 * half, 0);
    for (size_t part = 0; part < 2; ++part) {
        if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_INTEGER) != 0 || len == 0)
            throw std::runtime_error("ECDSA signature: r or s is not a DER INTEGER");
        if (p[0] & 0x80) throw std::runtime_error("ECDSA signature: r or s is negative");
        const unsigned char* v = p;
        size_t vlen = len;
        while (vlen > 1 && v[0] == 0) {
            ++v;
            --vlen;
        }
        if (vlen > half)
            throw std::runtime_error("ECDSA signature: r or s is longer than the curve order");
        std::copy(v, v + vlen,
                  raw.begin() + static_cast<std::ptrdiff_t>(part * half + half - vlen));
        p += len;
    }
    if (p != end) throw std::runtime_error("ECDSA signature has bytes after s");
    return raw;
}

}  // namespace keychaind::pkcs11
