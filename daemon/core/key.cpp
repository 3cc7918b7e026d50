// Construction of keys and the checks that make them consistent.
#include "core/key.h"

#include "core/error.h"

namespace keychaind {
namespace {

// The software KEK: its bytes stay in the Key's locked SecretBytes.
class SoftwareAesKey final : public AesKey {
public:
    explicit SoftwareAesKey(const SecretBytes& material) : material_(material) {}
    void gcm_encrypt(std::span<const uint8_t> nonce, std::span<const uint8_t> aad,
                     std::span<const uint8_t> pt, std::span<uint8_t> ct,
                     std::span<uint8_t> tag) const override {
        crypto_backend().aes256_gcm_encrypt(material_.span(), nonce, aad, pt, ct, tag);
    }
    bool gcm_decrypt(std::span<const uint8_t> nonce, std::span<const uint8_t> aad,
                     std::span<const uint8_t> ct, std::span<const uint8_t> tag,
                     std::span<uint8_t> pt) const override {
        return crypto_backend().aes256_gcm_decrypt(material_.span(), nonce, aad, ct, tag, pt);
    }

private:
    const SecretBytes& material_;  // owned by the Key, which owns this object too
};

}  // namespace

std::string usages_text(uint8_t usages) {
    std::string s;
    auto add = [&](const char* w) { s += s.empty() ? w : std::string(",") + w; };
    if (usages & kUsageSign) add("sign");
    if (usages & kUsageDecrypt) add("decrypt");
    if (usages & kUsageWrap) add("wrap,unwrap");
    return s;
}

std::shared_ptr<const Key> Key::aes(SecretBytes material, std::string label,
                                    std::optional<SystemTime> expires) {
    if (material.size() != kAesKeySize)
        throw KeychainError(ErrorCode::BadRequest, "an AES key must be 32 bytes, got " +
                                                       std::to_string(material.size()));
    auto k = std::shared_ptr<Key>(new Key);
    k->id_ = KeyId::for_symmetric_key(material.span());
    k->label_ = std::move(label);
    k->kind_ = KeyKind::Aes256;
    k->bits_ = 256;
    k->usages_ = kUsageWrap;
    k->expires_ = expires;
    k->aes_ = std::move(material);
    k->aes_key_ = std::make_unique<SoftwareAesKey>(k->aes_);
    return k;
}

std::shared_ptr<const Key> Key::aes_elsewhere(std::unique_ptr<AesKey> key, KeyId id,
                                              std::string label, std::optional<SystemTime> expires) {
    if (id.size() != KeyId::kSymmetricSize)
        throw KeychainError(ErrorCode::Internal, "an AES key id must be 16 bytes");
    auto k = std::shared_ptr<Key>(new Key);
    k->id_ = id;
    k->label_ = std::move(label);
    k->kind_ = KeyKind::Aes256;
    k->bits_ = 256;
    k->usages_ = kUsageWrap;
    k->expires_ = expires;
    k->aes_key_ = std::move(key);
    return k;
}

std::shared_ptr<const Key> Key::identity(std::unique_ptr<PrivateKey> key,
                                         std::vector<std::vector<uint8_t>> chain, std::string label,
                                         std::optional<SystemTime> expires) {
    auto k = std::shared_ptr<Key>(new Key);
    k->spki_ = key->public_key_der();
    if (!chain.empty() && crypto_backend().certificate_public_key(chain.front()) != k->spki_)
        throw KeychainError(ErrorCode::BadRequest,
                            "the first certificate does not belong to the private key");
    k->id_ = KeyId::for_public_key(k->spki_);
    k->label_ = std::move(label);
    k->kind_ = key->kind();
    k->bits_ = key->bits();
    k->usages_ = static_cast<uint8_t>(kUsageSign | (key->kind() == KeyKind::Rsa ? kUsageDecrypt : 0));
    k->expires_ = expires;
    k->private_ = std::move(key);
    k->chain_ = std::move(chain);
    return k;
}

}  // namespace keychaind
