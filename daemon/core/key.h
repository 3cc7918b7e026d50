// Key: one immutable key as a source produced it, with its material in locked memory.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/crypto_backend.h"
#include "core/key_id.h"
#include "core/secret_bytes.h"

namespace keychaind {

enum Usage : uint8_t { kUsageSign = 1, kUsageDecrypt = 2, kUsageWrap = 4 };  // wrap covers unwrap
std::string usages_text(uint8_t usages);

using SystemTime = std::chrono::system_clock::time_point;
// The latest expiry a key may have, 2199-12-31T23:59:59Z: system_clock counts nanoseconds in 64
// bits (to 2262), and a later time would overflow it. Absent expiry means none.
inline constexpr std::chrono::seconds kLatestExpiry{7258118399};
inline constexpr std::string_view kLatestExpiryText = "2199-12-31T23:59:59Z";

// Where a key came from. `tethered` keys go when the last tethered origin goes.
struct KeyOrigin {
    std::string kind;      // "file", "identity", "provided", "device", "token"
    std::string location;  // path, device serial+uuid+file, token URI
    bool tethered = false;
    bool operator==(const KeyOrigin&) const = default;
    std::string text() const { return kind + ":" + location; }
};

class Key {
public:
    static constexpr size_t kAesKeySize = 32;

    // An AES-256 key-encryption key.
    static std::shared_ptr<const Key> aes(SecretBytes material, std::string label,
                                          std::optional<SystemTime> expires = std::nullopt);
    // An AES-256 key that lives elsewhere (a token) under the id `id`, which the source computed as
    // DESIGN.md defines it when it could, so a wrapped key interoperates with the software KEK.
    static std::shared_ptr<const Key> aes_elsewhere(std::unique_ptr<AesKey> key, KeyId id,
                                                    std::string label,
                                                    std::optional<SystemTime> expires = std::nullopt);
    // A TLS identity: a private key with an optional certificate chain (leaf first). Throws
    // KeychainError(BadRequest) when the leaf certificate does not match the key.
    static std::shared_ptr<const Key> identity(std::unique_ptr<PrivateKey> key,
                                               std::vector<std::vector<uint8_t>> chain,
                                               std::string label,
                                               std::optional<SystemTime> expires = std::nullopt);

    const KeyId& id() const { return id_; }
    const std::string& label() const { return label_; }
    KeyKind kind() const { return kind_; }
    unsigned bits() const { return bits_; }
    uint8_t usages() const { return usages_; }
    const std::optional<SystemTime>& expires() const { return expires_; }
    // Non-null only for AES keys.
    const AesKey* aes_key() const { return aes_key_.get(); }
    // The bytes of a software AES key; empty for other keys and for AES keys in a token.
    const SecretBytes& aes_material() const { return aes_; }
    // Non-null only for asymmetric keys.
    const PrivateKey* private_key() const { return private_.get(); }
    const std::vector<uint8_t>& public_key_der() const { return spki_; }
    const std::vector<std::vector<uint8_t>>& certificates() const { return chain_; }

private:
    Key() = default;
    KeyId id_;
    std::string label_;
    KeyKind kind_ = KeyKind::Aes256;
    unsigned bits_ = 0;
    uint8_t usages_ = 0;
    std::optional<SystemTime> expires_;
    SecretBytes aes_;
    std::unique_ptr<AesKey> aes_key_;
    std::unique_ptr<PrivateKey> private_;
    std::vector<uint8_t> spki_;
    std::vector<std::vector<uint8_t>> chain_;
};

}  // namespace keychaind
