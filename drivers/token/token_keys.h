// TokenPrivateKey and TokenAesKey: keys whose material never leaves the token; every use is a
// bounded call into it, with its result in the same format the software keys give.
#pragma once

#include <p11-kit/pkcs11.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/crypto_backend.h"
#include "token/pkcs11_encoding.h"
#include "token/token_connection.h"

namespace keychaind::token {

// Which object a key is on its token; found again by these attributes when its handle goes stale.
struct TokenObject {
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE key_type = CKK_RSA;
    std::vector<uint8_t> id;  // CKA_ID
    std::string label;        // CKA_LABEL
    std::atomic<CK_OBJECT_HANDLE> handle{CK_INVALID_HANDLE};
    bool always_authenticate = false;     // CKA_ALWAYS_AUTHENTICATE: the PIN again for each use
    std::atomic<unsigned> raw_oaep{0};    // bit 0 SHA-1, bit 1 SHA-256: the token refused OAEP with
                                          // that hash, so the padding is decoded here
};

// The one object with `obj`'s class, key type, CKA_ID and CKA_LABEL; CK_INVALID_HANDLE when there
// is none. Throws TokenFault when several match.
CK_OBJECT_HANDLE find_object(const CallContext& c, const TokenObject& obj);

// Runs job with the object's handle. When the token calls the handle invalid, the object is
// looked up again and the job runs once more; when it is not there any more, a token that is no
// longer listed is marked gone (its keys become absent). Throws KeychainError.
template <class R>
R call_with_object(const std::shared_ptr<TokenConnection>& conn, const std::shared_ptr<TokenObject>& obj,
                   std::function<R(const CallContext&, CK_OBJECT_HANDLE)> job);

class TokenPrivateKey final : public PrivateKey {
public:
    TokenPrivateKey(std::shared_ptr<TokenConnection> conn, std::shared_ptr<TokenObject> obj, TokenPublicKey pub);

    KeyKind kind() const override { return pub_.kind; }
    unsigned bits() const override { return pub_.bits; }
    const std::vector<uint8_t>& public_key_der() const override { return pub_.spki; }
    // RSA PKCS#1 v1.5 (CKM_RSA_PKCS over DigestInfo ‖ digest, or the raw input), PSS (CKM_RSA_PKCS_PSS,
    // MGF1 and salt of the digest's hash, as mbedTLS signs), ECDSA (CKM_ECDSA, r‖s made DER).
    size_t sign_into(SignAlgorithm alg, std::span<const uint8_t> digest, std::span<uint8_t> out) const override;
    // RSA-OAEP (CKM_RSA_PKCS_OAEP, MGF1 with the same hash, empty label). A token that refuses the
    // hash (SoftHSM2 2.6 does OAEP with SHA-1 only) decrypts with CKM_RSA_X_509 and the padding is
    // checked here, in constant time.
    SecretBytes decrypt(DecryptAlgorithm alg, std::span<const uint8_t> ciphertext) const override;

private:
    size_t signature_size() const;
    SecretBytes decrypt_raw(bool sha1, std::span<const uint8_t> ciphertext, const std::string& refused) const;
    std::shared_ptr<TokenConnection> conn_;
    std::shared_ptr<TokenObject> obj_;
    TokenPublicKey pub_;
};

// CKM_AES_GCM in the token, byte for byte what the software KEK produces.
class TokenAesKey final : public AesKey {
public:
    TokenAesKey(std::shared_ptr<TokenConnection> conn, std::shared_ptr<TokenObject> obj);
    void gcm_encrypt(std::span<const uint8_t> nonce, std::span<const uint8_t> aad, std::span<const uint8_t> plaintext,
                     std::span<uint8_t> ciphertext, std::span<uint8_t> tag) const override;
    bool gcm_decrypt(std::span<const uint8_t> nonce, std::span<const uint8_t> aad, std::span<const uint8_t> ciphertext,
                     std::span<const uint8_t> tag, std::span<uint8_t> plaintext) const override;

private:
    std::shared_ptr<TokenConnection> conn_;
    std::shared_ptr<TokenObject> obj_;
};

// --- template definition --------------------------------------------------------------------

template <class R>
R call_with_object(const std::shared_ptr<TokenConnection>& conn, const std::shared_ptr<TokenObject>& obj,
                   std::function<R(const CallContext&, CK_OBJECT_HANDLE)> job) {
    {
        auto session = conn->session();
        try {
            const CK_OBJECT_HANDLE h = obj->handle.load();
            return session.run<R>([job, h](const CallContext& c) { return job(c, h); });
        } catch (const TokenCallError& e) {
            if (!rv_object_lost(e.rv())) throw;
        }
    }  // back to the pool before the next lease: a pool of one session must not wait on itself
    auto fresh = conn->session();
    const CK_OBJECT_HANDLE h =
        fresh.run<CK_OBJECT_HANDLE>([obj](const CallContext& c) { return find_object(c, *obj); });
    if (h == CK_INVALID_HANDLE) {
        if (!conn->still_listed()) {
            conn->mark_gone("its key \"" + obj->label + "\" is no longer there");
            throw KeychainError(ErrorCode::TokenError, conn->who() + " was removed");
        }
        throw KeychainError(ErrorCode::TokenError,
                            conn->who() + ": key \"" + obj->label + "\" is no longer on the token");
    }
    obj->handle.store(h);
    return fresh.run<R>([job, h](const CallContext& c) { return job(c, h); });
}

}  // namespace keychaind::token
