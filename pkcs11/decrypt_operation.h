// DecryptOperation: one C_DecryptInit .. C_Decrypt with CKM_RSA_PKCS_OAEP.
#pragma once

#include <cstddef>

#include "cryptoki.h"
#include "token_objects.h"

namespace keychaind::pkcs11 {

class DecryptOperation {
  public:
    // Throws Pkcs11Error: CKR_MECHANISM_INVALID, CKR_KEY_TYPE_INCONSISTENT,
    // CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_MECHANISM_PARAM_INVALID.
    DecryptOperation(const CK_MECHANISM& mechanism, const PrivateKeyRef& key);

    const PrivateKeyRef& key() const { return key_; }
    int daemon_algorithm() const { return algorithm_; }  // KC_DECRYPT_*
    size_t ciphertext_length() const { return key_.modulus_bytes; }
    // OAEP's bound: k - 2 hLen - 2.
    size_t max_plaintext_length() const;

  private:
    PrivateKeyRef key_;
    int algorithm_ = 0;
    size_t hash_size_ = 0;
};

}  // namespace keychaind::pkcs11
