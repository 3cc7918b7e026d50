// read_token_keys: the keys on a token — private keys with their public halves and certificate
// chains, AES-256 secret keys with ids computed inside the token — as keychain Keys.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/key.h"
#include "token/object_uri.h"
#include "token/token_connection.h"

namespace keychaind::token {

// Bounds on what is read from a token before anything is allocated for it.
inline constexpr size_t kMaxObjectsPerClass = 1024;
inline constexpr size_t kMaxCertificateBytes = 64 * 1024;
inline constexpr size_t kMaxModulusBytes = 1024;
inline constexpr size_t kMaxPublicKeyInfoBytes = 4096;

struct TokenKeyEntry {
    std::shared_ptr<const Key> key;
    std::string location;  // the object's pkcs11: URI, the key's origin
};

struct TokenKeyScan {
    std::vector<TokenKeyEntry> keys;
    std::vector<std::string> problems;  // one per key skipped or object half-written; the caller logs them
    // Objects that look half-written, as a token being filled by another process shows them: keys
    // skipped for it (no key type, an AES key without a length, an RSA key without its modulus, an
    // EC key without its curve or its public key's point), and public keys and certificates with
    // no CKA_ID, no label and no value.
    size_t unfinished = 0;
};

// Every private key whose public half can be found (CKA_PUBLIC_KEY_INFO; a CKO_PUBLIC_KEY or a
// certificate with its CKA_ID; an RSA key's own modulus) and every AES-256 secret key that can
// decrypt, among those `selectors` select (none: all). A key the daemon cannot use is skipped and
// reported; an object that vanishes while it is read is passed over. Throws KeychainError when the
// token fails as a whole (gone, not answering).
TokenKeyScan read_token_keys(const std::shared_ptr<TokenConnection>& conn, const std::vector<Pkcs11Uri>& selectors);

// The id of a token's AES key when the token will not digest it (C_DigestKey): the first 16
// bytes of SHA-256("keychaind token-key v1" ‖ token serial ‖ CKA_ID ‖ CKA_LABEL).
KeyId fallback_aes_key_id(const std::string& serial, std::span<const uint8_t> id, const std::string& label);

}  // namespace keychaind::token
