// DecryptOperation: RSA-OAEP parameter checks against what the daemon decrypts.
#include "decrypt_operation.h"

#include <cstring>
#include <string>

#include "keychain/client.h"
#include "mechanisms.h"

namespace keychaind::pkcs11 {
namespace {

[[noreturn]] void fail(CK_RV rv, const std::string& why) { throw Pkcs11Error(rv, why); }

}  // namespace

DecryptOperation::DecryptOperation(const CK_MECHANISM& m, const PrivateKeyRef& key) : key_(key) {
    const Mechanism* mech = find_mechanism(m.mechanism);
    if (mech == nullptr || mech->scheme != Scheme::RsaOaep)
        fail(CKR_MECHANISM_INVALID,
             "mechanism " + std::to_string(m.mechanism) + " cannot decrypt here");
    if (key.family != KeyFamily::Rsa) fail(CKR_KEY_TYPE_INCONSISTENT, "RSA-OAEP needs an RSA key");
    if (!key.can_decrypt) fail(CKR_KEY_FUNCTION_NOT_PERMITTED, "the key may not decrypt");
    if (m.pParameter == nullptr || m.ulParameterLen != sizeof(CK_RSA_PKCS_OAEP_PARAMS))
        fail(CKR_MECHANISM_PARAM_INVALID, "RSA-OAEP needs CK_RSA_PKCS_OAEP_PARAMS");
    CK_RSA_PKCS_OAEP_PARAMS p;
    std::memcpy(&p, m.pParameter, sizeof p);
    // keychaind decrypts OAEP with SHA-1 or SHA-256, MGF1 over the same hash, and no label.
    if (p.hashAlg == CKM_SHA_1 && p.mgf == CKG_MGF1_SHA1) {
        algorithm_ = KC_DECRYPT_RSA_OAEP_SHA1;
        hash_size_ = 20;
    } else if (p.hashAlg == CKM_SHA256 && p.mgf == CKG_MGF1_SHA256) {
        algorithm_ = KC_DECRYPT_RSA_OAEP_SHA256;
        hash_size_ = 32;
    } else {
        fail(CKR_MECHANISM_PARAM_INVALID,
             "RSA-OAEP: keychaind decrypts with SHA-1 or SHA-256 and MGF1 of the same");
    }
    if ((p.source != CKZ_DATA_SPECIFIED && p.source != 0) || p.ulSourceDataLen != 0)
        fail(CKR_MECHANISM_PARAM_INVALID, "RSA-OAEP: keychaind decrypts with an empty label only");
}

size_t DecryptOperation::max_plaintext_length() const {
    const size_t overhead = 2 * hash_size_ + 2;
    return key_.modulus_bytes > overhead ? key_.modulus_bytes - overhead : 0;
}

}  // namespace keychaind::pkcs11
