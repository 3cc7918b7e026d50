// The mechanisms the token offers, what each needs from a key, and C_GetMechanismInfo's answers.
#pragma once

#include <cstddef>
#include <span>

#include "cryptoki.h"
#include "public_key_parts.h"

namespace keychaind::pkcs11 {

enum class Scheme { Ecdsa, RsaPkcs1, RsaPss, RsaOaep };
// The hash a mechanism computes in the module before the daemon signs (None: the caller hashed).
enum class Prehash { None, Sha256, Sha384, Sha512 };

struct Mechanism {
    CK_MECHANISM_TYPE type;
    KeyFamily family;
    Scheme scheme;
    Prehash prehash;
};

// In the order C_GetMechanismList reports them.
std::span<const Mechanism> all_mechanisms();
const Mechanism* find_mechanism(CK_MECHANISM_TYPE type);
CK_MECHANISM_INFO mechanism_info(const Mechanism& m);

// The daemon accepts RSA keys of 2048 to 4096 bits and EC keys on P-256 and P-384.
inline constexpr CK_ULONG kMinRsaBits = 2048;
inline constexpr CK_ULONG kMaxRsaBits = 4096;
inline constexpr CK_ULONG kMinEcBits = 256;
inline constexpr CK_ULONG kMaxEcBits = 384;

// Hash properties the mechanisms and their parameters speak of.
size_t prehash_size(Prehash h);
// CKM_SHA256/384/512 -> true and the Prehash; any other hash (SHA-1, SHA-224) -> false.
bool prehash_of_hash_mechanism(CK_MECHANISM_TYPE hash, Prehash& out);
CK_RSA_PKCS_MGF_TYPE mgf1_for(Prehash h);

}  // namespace keychaind::pkcs11
