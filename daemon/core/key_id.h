// KeyId: a key's source-independent identity (DESIGN.md "Keys and their identity").
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace keychaind {

class KeyId {
public:
    static constexpr size_t kSymmetricSize = 16;   // truncated SHA-256 of the key
    static constexpr size_t kAsymmetricSize = 32;  // SHA-256 of the SubjectPublicKeyInfo

    KeyId() = default;
    // Accepts 16 or 32 bytes; anything else yields nullopt.
    static std::optional<KeyId> from_bytes(std::span<const uint8_t> b);
    static std::optional<KeyId> from_hex(std::string_view hex);
    // id of an AES key: first 16 bytes of SHA-256("keychaind key-id v1" || key)
    static KeyId for_symmetric_key(std::span<const uint8_t> key);
    // id of an asymmetric key: SHA-256 of its SubjectPublicKeyInfo DER
    static KeyId for_public_key(std::span<const uint8_t> spki_der);

    std::span<const uint8_t> bytes() const { return {bytes_.data(), size_}; }
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    std::string hex() const;
    bool operator==(const KeyId& o) const {
        return size_ == o.size_ && std::equal(bytes_.begin(), bytes_.begin() + size_, o.bytes_.begin());
    }

private:
    std::array<uint8_t, 32> bytes_{};
    uint8_t size_ = 0;
};

std::string to_hex(std::span<const uint8_t> b);
// Decodes even-length hex; nullopt on any non-hex digit.
std::optional<std::string> from_hex_string(std::string_view hex);

}  // namespace keychaind

template <>
struct std::hash<keychaind::KeyId> {
    size_t operator()(const keychaind::KeyId& k) const noexcept {
        size_t h = 0;
        auto b = k.bytes();
        for (size_t i = 0; i < b.size() && i < sizeof(size_t); ++i) h = (h << 8) | b[i];
        return h;
    }
};
