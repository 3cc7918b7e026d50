// KCW1: the wrapped data-key format (DESIGN.md "Envelope encryption", docs/envelope.md).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/crypto_backend.h"
#include "core/key_id.h"
#include "core/secret_bytes.h"

namespace keychaind::envelope {

inline constexpr std::string_view kMagic = "KCW1";
inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kHeaderSize = 4 + KeyId::kSymmetricSize + kNonceSize;
inline constexpr size_t kOverhead = kHeaderSize + kTagSize;
inline constexpr size_t kMaxDataKeySize = 1024;
inline constexpr size_t kMaxContextSize = 4096;

struct WrappedView {
    KeyId kek_id;
    std::span<const uint8_t> nonce;
    std::span<const uint8_t> ciphertext;
    std::span<const uint8_t> tag;
};

// nullopt when the magic or the length is wrong.
std::optional<WrappedView> parse(std::span<const uint8_t> wrapped);

// Wraps with a fresh random nonce, or `fixed_nonce` (test vectors only).
std::vector<uint8_t> wrap(const KeyId& kek_id, const AesKey& kek,
                          std::span<const uint8_t> data_key, std::span<const uint8_t> context,
                          std::span<const uint8_t> fixed_nonce = {});

// Throws KeychainError(BadRequest) when the wrapped key does not authenticate under this KEK and
// context.
SecretBytes unwrap(const AesKey& kek, const WrappedView& w,
                   std::span<const uint8_t> context);

}  // namespace keychaind::envelope
