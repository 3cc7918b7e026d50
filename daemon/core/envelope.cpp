// KCW1 wrap and unwrap over the crypto backend's AES-256-GCM.
#include "core/envelope.h"

#include <cstring>

#include "core/crypto_backend.h"
#include "core/error.h"

namespace keychaind::envelope {
namespace {

// "KCW1" || KEK id || context, on the stack: the longest is a few KiB (kMaxContextSize), and an
// envelope operation allocates nothing for it. The caller checks the context's size first.
class Aad {
public:
    Aad(const KeyId& kek_id, std::span<const uint8_t> context) {
        if (context.size() > kMaxContextSize)
            throw KeychainError(ErrorCode::BadRequest,
                                "context is longer than " + std::to_string(kMaxContextSize) + " bytes");
        const auto id = kek_id.bytes();
        std::memcpy(bytes_, kMagic.data(), kMagic.size());
        std::memcpy(bytes_ + kMagic.size(), id.data(), id.size());
        if (!context.empty()) std::memcpy(bytes_ + kMagic.size() + id.size(), context.data(), context.size());
        size_ = kMagic.size() + id.size() + context.size();
    }
    Aad(const Aad&) = delete;
    Aad& operator=(const Aad&) = delete;
    ~Aad() { secure_wipe(bytes_, size_); }
    operator std::span<const uint8_t>() const { return {bytes_, size_}; }

private:
    uint8_t bytes_[4 + KeyId::kAsymmetricSize + kMaxContextSize];
    size_t size_ = 0;
};

}  // namespace

std::optional<WrappedView> parse(std::span<const uint8_t> w) {
    if (w.size() <= kOverhead || w.size() > kOverhead + kMaxDataKeySize) return std::nullopt;
    if (std::memcmp(w.data(), kMagic.data(), kMagic.size()) != 0) return std::nullopt;
    WrappedView v;
    v.kek_id = *KeyId::from_bytes(w.subspan(4, KeyId::kSymmetricSize));
    v.nonce = w.subspan(4 + KeyId::kSymmetricSize, kNonceSize);
    v.ciphertext = w.subspan(kHeaderSize, w.size() - kOverhead);
    v.tag = w.subspan(w.size() - kTagSize);
    return v;
}

std::vector<uint8_t> wrap(const KeyId& kek_id, const AesKey& kek,
                          std::span<const uint8_t> data_key, std::span<const uint8_t> context,
                          std::span<const uint8_t> fixed_nonce) {
    if (kek_id.size() != KeyId::kSymmetricSize)
        throw KeychainError(ErrorCode::BadRequest, "the KEK is not an AES key");
    if (data_key.empty() || data_key.size() > kMaxDataKeySize)
        throw KeychainError(ErrorCode::BadRequest,
                            "a data key must be 1 to " + std::to_string(kMaxDataKeySize) + " bytes");
    if (context.size() > kMaxContextSize)
        throw KeychainError(ErrorCode::BadRequest,
                            "context is longer than " + std::to_string(kMaxContextSize) + " bytes");
    std::vector<uint8_t> out(kOverhead + data_key.size());
    std::memcpy(out.data(), kMagic.data(), kMagic.size());
    std::memcpy(out.data() + 4, kek_id.bytes().data(), KeyId::kSymmetricSize);
    std::span<uint8_t> nonce(out.data() + 4 + KeyId::kSymmetricSize, kNonceSize);
    if (!fixed_nonce.empty()) {
        if (fixed_nonce.size() != kNonceSize)
            throw KeychainError(ErrorCode::BadRequest, "nonce must be 12 bytes");
        std::memcpy(nonce.data(), fixed_nonce.data(), kNonceSize);
    } else {
        crypto_backend().random(nonce);
    }
    const Aad aad(kek_id, context);
    kek.gcm_encrypt(nonce, aad, data_key,
                    {out.data() + kHeaderSize, data_key.size()},
                    {out.data() + out.size() - kTagSize, kTagSize});
    return out;
}

SecretBytes unwrap(const AesKey& kek, const WrappedView& w,
                   std::span<const uint8_t> context) {
    if (context.size() > kMaxContextSize)
        throw KeychainError(ErrorCode::BadRequest,
                            "context is longer than " + std::to_string(kMaxContextSize) + " bytes");
    SecretBytes out(w.ciphertext.size());
    const Aad aad(w.kek_id, context);
    if (!kek.gcm_decrypt(w.nonce, aad, w.ciphertext, w.tag, out.span()))
        throw KeychainError(ErrorCode::BadRequest,
                            "wrapped key does not authenticate (wrong context or altered bytes)");
    return out;
}

}  // namespace keychaind::envelope
