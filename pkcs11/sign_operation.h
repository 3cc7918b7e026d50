// SignOperation: one C_SignInit .. C_Sign/C_SignFinal, from the caller's data to the daemon's
// SIGN request and back to the signature PKCS#11 expects.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "mechanisms.h"
#include "token_objects.h"

namespace keychaind::pkcs11 {

// What the daemon is asked to sign: a KC_SIGN_* algorithm and its input.
struct DaemonSignRequest {
    int algorithm = 0;
    std::vector<uint8_t> input;
};

// The most a mechanism that takes a digest (CKM_ECDSA, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS) collects
// over C_SignUpdate calls; RSA mechanisms are bounded by the key's size well below it.
inline constexpr size_t kMaxRawSignInput = 512;

class SignOperation {
  public:
    // Throws Pkcs11Error: CKR_MECHANISM_INVALID, CKR_KEY_TYPE_INCONSISTENT,
    // CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_MECHANISM_PARAM_INVALID.
    SignOperation(const CK_MECHANISM& mechanism, const PrivateKeyRef& key);
    ~SignOperation();
    SignOperation(const SignOperation&) = delete;
    SignOperation& operator=(const SignOperation&) = delete;

    const PrivateKeyRef& key() const { return key_; }
    // RSA: the modulus size; ECDSA: r || s.
    size_t signature_length() const;
    bool has_updates() const { return updated_; }

    // C_SignUpdate: hashes, or collects the digest. Throws CKR_DATA_LEN_RANGE past the bound.
    void update(std::span<const uint8_t> data);
    // After all data went through update(): the daemon's request. Throws CKR_DATA_LEN_RANGE when
    // the collected input does not fit the mechanism.
    DaemonSignRequest finish();
    // The daemon's signature as PKCS#11 returns it (ECDSA: DER -> r || s). Throws
    // CKR_DEVICE_ERROR if the daemon's answer is malformed.
    std::vector<uint8_t> to_pkcs11_signature(std::span<const uint8_t> daemon_signature) const;

  private:
    class Digest;
    const Mechanism* mechanism_;
    PrivateKeyRef key_;
    Prehash pss_hash_ = Prehash::None;  // CKM_RSA_PKCS_PSS: the hash its parameters name
    std::unique_ptr<Digest> digest_;    // mechanisms that hash in the module
    std::vector<uint8_t> collected_;    // mechanisms that take a digest
    size_t collect_limit_ = 0;
    bool updated_ = false;
};

}  // namespace keychaind::pkcs11
