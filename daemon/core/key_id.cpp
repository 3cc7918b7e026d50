// KeyId derivation and hex forms.
#include "core/key_id.h"

#include <mbedtls/sha256.h>

#include <algorithm>
#include <cstring>

namespace keychaind {

namespace {
constexpr std::string_view kSymmetricIdContext = "keychaind key-id v1";

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

std::string to_hex(std::span<const uint8_t> b) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s;
    s.reserve(b.size() * 2);
    for (uint8_t v : b) {
        s.push_back(kDigits[v >> 4]);
        s.push_back(kDigits[v & 15]);
    }
    return s;
}

std::optional<std::string> from_hex_string(std::string_view hex) {
    if (hex.size() % 2 != 0) return std::nullopt;
    std::string out(hex.size() / 2, '\0');
    for (size_t i = 0; i < out.size(); ++i) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out[i] = static_cast<char>(hi << 4 | lo);
    }
    return out;
}

std::optional<KeyId> KeyId::from_bytes(std::span<const uint8_t> b) {
    if (b.size() != kSymmetricSize && b.size() != kAsymmetricSize) return std::nullopt;
    KeyId id;
    std::copy(b.begin(), b.end(), id.bytes_.begin());
    id.size_ = static_cast<uint8_t>(b.size());
    return id;
}

std::optional<KeyId> KeyId::from_hex(std::string_view hex) {
    auto raw = from_hex_string(hex);
    if (!raw) return std::nullopt;
    return from_bytes({reinterpret_cast<const uint8_t*>(raw->data()), raw->size()});
}

KeyId KeyId::for_symmetric_key(std::span<const uint8_t> key) {
    uint8_t digest[32];
    mbedtls_sha256_context ctx;
    mbedtls_sha256_init(&ctx);
    mbedtls_sha256_starts_ret(&ctx, 0);
    mbedtls_sha256_update_ret(&ctx, reinterpret_cast<const uint8_t*>(kSymmetricIdContext.data()),
                              kSymmetricIdContext.size());
    mbedtls_sha256_update_ret(&ctx, key.data(), key.size());
    mbedtls_sha256_finish_ret(&ctx, digest);
    mbedtls_sha256_free(&ctx);
    KeyId id;
    std::memcpy(id.bytes_.data(), digest, kSymmetricSize);
    id.size_ = kSymmetricSize;
    return id;
}

KeyId KeyId::for_public_key(std::span<const uint8_t> spki_der) {
    KeyId id;
    mbedtls_sha256_ret(spki_der.data(), spki_der.size(), id.bytes_.data(), 0);
    id.size_ = kAsymmetricSize;
    return id;
}

std::string KeyId::hex() const { return to_hex(bytes()); }

}  // namespace keychaind
