// The mechanism table: ECDSA, RSA PKCS#1 v1.5 and PSS (raw and with SHA-2), RSA-OAEP decryption.
#include "mechanisms.h"

namespace keychaind::pkcs11 {
namespace {

constexpr Mechanism kMechanisms[] = {
    {CKM_ECDSA, KeyFamily::Ec, Scheme::Ecdsa, Prehash::None},
    {CKM_ECDSA_SHA256, KeyFamily::Ec, Scheme::Ecdsa, Prehash::Sha256},
    {CKM_ECDSA_SHA384, KeyFamily::Ec, Scheme::Ecdsa, Prehash::Sha384},
    {CKM_ECDSA_SHA512, KeyFamily::Ec, Scheme::Ecdsa, Prehash::Sha512},
    {CKM_RSA_PKCS, KeyFamily::Rsa, Scheme::RsaPkcs1, Prehash::None},
    {CKM_SHA256_RSA_PKCS, KeyFamily::Rsa, Scheme::RsaPkcs1, Prehash::Sha256},
    {CKM_SHA384_RSA_PKCS, KeyFamily::Rsa, Scheme::RsaPkcs1, Prehash::Sha384},
    {CKM_SHA512_RSA_PKCS, KeyFamily::Rsa, Scheme::RsaPkcs1, Prehash::Sha512},
    {CKM_RSA_PKCS_PSS, KeyFamily::Rsa, Scheme::RsaPss, Prehash::None},
    {CKM_SHA256_RSA_PKCS_PSS, KeyFamily::Rsa, Scheme::RsaPss, Prehash::Sha256},
    {CKM_SHA384_RSA_PKCS_PSS, KeyFamily::Rsa, Scheme::RsaPss, Prehash::Sha384},
    {CKM_SHA512_RSA_PKCS_PSS, KeyFamily::Rsa, Scheme::RsaPss, Prehash::Sha512},
    {CKM_RSA_PKCS_OAEP, KeyFamily::Rsa, Scheme::RsaOaep, Prehash::None},
};

}  // namespace

std::span<const Mechanism> all_mechanisms() { return kMechanisms; }

const Mechanism* find_mechanism(CK_MECHANISM_TYPE type) {
    for (const Mechanism& m : kMechanisms)
        if (m.type == type) return &m;
    return nullptr;
}

CK_MECHANISM_INFO mechanism_info(const Mechanism& m) {
    CK_MECHANISM_INFO info{};
    if (m.family == KeyFamily::Rsa) {
        info.ulMinKeySize = kMinRsaBits;
        info.ulMaxKeySize = kMaxRsaBits;
    } else {
        info.ulMinKeySize = kMinEcBits;
        info.ulMaxKeySize = kMaxEcBits;
        info.flags = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
    }
    // CKF_HW: the private-key operation happens in the device (keychaind, and the HSM behind
    // it), never in the caller's process. Only what the daemon does is claimed: no verify, no
    // encrypt (those need no private key; the caller does them with the public key).
    info.flags |= CKF_HW | (m.scheme == Scheme::RsaOaep ? CKF_DECRYPT : CKF_SIGN);
    return info;
}

size_t prehash_size(Prehash h) {
    switch (h) {
        case Prehash::Sha256:
            return 32;
        case Prehash::Sha384:
            return 48;
        case Prehash::Sha512:
            return 64;
        case Prehash::None:
            return 0;
    }
    return 0;
}

bool prehash_of_hash_mechanism(CK_MECHANISM_TYPE hash, Prehash& out) {
    switch (hash) {
        case CKM_SHA256:
            out = Prehash::Sha256;
            return true;
        case CKM_SHA384:
            out = Prehash::Sha384;
            return true;
        case CKM_SHA512:
            out = Prehash::Sha512;
            return true;
        default:
            return false;
    }
}

CK_RSA_PKCS_MGF_TYPE mgf1_for(Prehash h) {
    switch (h) {
        case Prehash::Sha256:
            return CKG_MGF1_SHA256;
        case Prehash::Sha384:
            return CKG_MGF1_SHA384;
        case Prehash::Sha512:
            return CKG_MGF1_SHA512;
        case Prehash::None:
            return 0;
    }
    return 0;
}

}  // namespace keychaind::pkcs11
