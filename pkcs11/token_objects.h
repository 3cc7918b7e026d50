// TokenObject: one PKCS#11 object (private key, public key, certificate) with its attributes.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attribute_set.h"
#include "key_records.h"

namespace keychaind::pkcs11 {

// What a sign or decrypt operation needs to know of its key.
struct PrivateKeyRef {
    std::string id_hex;
    KeyFamily family = KeyFamily::Rsa;
    unsigned bits = 0;
    size_t modulus_bytes = 0;   // RSA: the signature and ciphertext size
    size_t ec_order_bytes = 0;  // EC: the size of r and of s
    bool can_sign = false;
    bool can_decrypt = false;
};

struct TokenObject {
    CK_OBJECT_CLASS object_class = CKO_DATA;
    std::string key_id_hex;                    // the key whose record made this object
    std::optional<PrivateKeyRef> private_key;  // private key objects only
    AttributeSet attributes;
};

// A name that stays the same for the same object across refreshes ("private:<id>",
// "certificate:<sha-256 of its DER>"), so its handle does too.
struct NamedObject {
    std::string name;
    std::shared_ptr<const TokenObject> object;
};

// Each key's private and public key objects and its certificates (the leaf with CKA_ID = the key
// id, chain certificates with CKA_ID = SHA-256 of their own public key, each certificate once).
std::vector<NamedObject> build_token_objects(const KeyRecords& records);

}  // namespace keychaind::pkcs11
