// encodedKey / passPhrase decoding.
#include "core/data_key_text.h"

#include <mbedtls/base64.h>
#include <mbedtls/sha256.h>

#include <string>

#include "core/error.h"

namespace keychaind {
namespace {
int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

SecretBytes decode_encoded_key(std::string_view t) {
    if (t.size() == 64) {
        SecretBytes out(32);
        for (size_t i = 0; i < 32; ++i) {
            const int hi = hex_digit(t[2 * i]), lo = hex_digit(t[2 * i + 1]);
            if (hi < 0 || lo < 0)
                throw KeychainError(ErrorCode::BadRequest,
                                    "encodedKey has a non-hexadecimal character at position " +
                                        std::to_string(hi < 0 ? 2 * i + 1 : 2 * i + 2));
            out.data()[i] = static_cast<uint8_t>(hi << 4 | lo);
        }
        return out;
    }
    if (t.empty()) throw KeychainError(ErrorCode::BadRequest, "encodedKey is empty");
    bool all_hex = true;
    for (char c : t) all_hex = all_hex && hex_digit(c) >= 0;
    // The base64 form of 32 bytes always ends in '=', which no hex string holds.
    if (t.size() == 44 && !all_hex) {
        SecretBytes out(33);
        size_t olen = 0;
        const int rc = mbedtls_base64_decode(out.data(), out.size(), &olen,
                                             reinterpret_cast<const unsigned char*>(t.data()), t.size());
        if (rc != 0 || olen != 32)
            throw KeychainError(ErrorCode::BadRequest,
                                "encodedKey of 44 characters is not the base64 form of 32 bytes");
        out.truncate(32);
        return out;
    }
    if (all_hex)
        throw KeychainError(ErrorCode::BadRequest, "encodedKey is " + std::to_string(t.size()) +
                                                       " hex digits, need 64");
    throw KeychainError(ErrorCode::BadRequest,
                        "encodedKey is " + std::to_string(t.size()) +
                            " characters; need 64 hex digits or 44 base64 characters");
}

SecretBytes passphrase_key(std::string_view p) {
    if (p.empty()) throw KeychainError(ErrorCode::BadRequest, "passPhrase is empty");
    SecretBytes out(32);
    mbedtls_sha256_ret(reinterpret_cast<const unsigned char*>(p.data()), p.size(), out.data(), 0);
    return out;
}

SecretBytes encode_key_hex(const SecretBytes& key) {
    static constexpr char kDigits[] = "0123456789abcdef";
    SecretBytes out(key.size() * 2);
    for (size_t i = 0; i < key.size(); ++i) {
        out.data()[2 * i] = static_cast<uint8_t>(kDigits[key.data()[i] >> 4]);
        out.data()[2 * i + 1] = static_cast<uint8_t>(kDigits[key.data()[i] & 15]);
    }
    return out;
}

}  // namespace keychaind
