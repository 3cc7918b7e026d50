// C entry points for what the token does not do: encryption, digests, verification, recovery,
// dual-function calls, key generation, wrapping, derivation, random numbers. A caller with the
// public key does the public-key half itself; the rest has no place in a key-use service.
#include "entry_export.h"
#include "entry_guard.h"
#include "module_state.h"

using namespace keychaind::pkcs11;

namespace {

// CKR_FUNCTION_NOT_SUPPORTED, after the checks every call makes.
CK_RV not_supported(const char* function, CK_SESSION_HANDLE session) {
    return guarded(function, [&] {
        StateGuard g = lock_initialized();
        g->sessions.get(session);
        return CKR_FUNCTION_NOT_SUPPORTED;
    });
}

}  // namespace

KEYCHAIND_P11_EXPORT CK_RV C_EncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR, CK_OBJECT_HANDLE) {
    return not_supported("C_EncryptInit", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_Encrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
                                     CK_ULONG_PTR) {
    return not_supported("C_Encrypt", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_EncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
                                           CK_ULONG_PTR) {
    return not_supported("C_EncryptUpdate", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_EncryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG_PTR) {
    return not_supported("C_EncryptFinal", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_DigestInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR) {
    return not_supported("C_DigestInit", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_Digest(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
                                    CK_ULONG_PTR) {
    return not_supported("C_Digest", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_DigestUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG) {
    return not_supported("C_DigestUpdate", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_DigestKey(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE) {
    return not_supported("C_DigestKey", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_DigestFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG_PTR) {
    return not_supported("C_DigestFinal", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_SignRecoverInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR,
                                             CK_OBJECT_HANDLE) {
    return not_supported("C_SignRecoverInit", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_SignRecover(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
                                         CK_ULONG_PTR) {
    return not_supported("C_SignRecover", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_VerifyInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR, CK_OBJECT_HANDLE) {
    return not_supported("C_VerifyInit", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_Verify(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
                                    CK_ULONG) {
    return not_supported("C_Verify", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_VerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG) {
    return not_supported("C_VerifyUpdate", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_VerifyFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG) {
    return not_supported("C_VerifyFinal", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_VerifyRecoverInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR,
                                               CK_OBJECT_HANDLE) {
    return not_supported("C_VerifyRecoverInit", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_VerifyRecover(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
                                           CK_ULONG_PTR) {
    return not_supported("C_VerifyRecover", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_DigestEncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG,
                                                 CK_BYTE_PTR, CK_ULONG_PTR) {
    return not_supported("C_DigestEncryptUpdate", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_DecryptDigestUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG,
                                                 CK_BYTE_PTR, CK_ULONG_PTR) {
    return not_supported("C_DecryptDigestUpdate", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_SignEncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG,
                                               CK_BYTE_PTR, CK_ULONG_PTR) {
    return not_supported("C_SignEncryptUpdate", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_DecryptVerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG,
                                                 CK_BYTE_PTR, CK_ULONG_PTR) {
    return not_supported("C_DecryptVerifyUpdate", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_GenerateKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR, CK_ATTRIBUTE_PTR,
                                         CK_ULONG, CK_OBJECT_HANDLE_PTR) {
    return not_supported("C_GenerateKey", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE h, CK_MECHANISM_PTR,
                                             CK_ATTRIBUTE_PTR, CK_ULONG, CK_ATTRIBUTE_PTR, CK_ULONG,
                                             CK_OBJECT_HANDLE_PTR, CK_OBJECT_HANDLE_PTR) {
    return not_supported("C_GenerateKeyPair", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_WrapKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR, CK_OBJECT_HANDLE,
                                     CK_OBJECT_HANDLE, CK_BYTE_PTR, CK_ULONG_PTR) {
    return not_supported("C_WrapKey", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_UnwrapKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR, CK_OBJECT_HANDLE,
                                       CK_BYTE_PTR, CK_ULONG, CK_ATTRIBUTE_PTR, CK_ULONG,
                                       CK_OBJECT_HANDLE_PTR) {
    return not_supported("C_UnwrapKey", h);
}
KEYCHAIND_P11_EXPORT CK_RV C_DeriveKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR, CK_OBJECT_HANDLE,
                                       CK_ATTRIBUTE_PTR, CK_ULONG, CK_OBJECT_HANDLE_PTR) {
    return not_supported("C_DeriveKey", h);
}

// No CKF_RNG in the token's flags: there is no random number generator to seed or read.
KEYCHAIND_P11_EXPORT CK_RV C_SeedRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG) {
    return guarded("C_SeedRandom", [&] {
        StateGuard g = lock_initialized();
        g->sessions.get(h);
        return CKR_RANDOM_NO_RNG;
    });
}
KEYCHAIND_P11_EXPORT CK_RV C_GenerateRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG) {
    return guarded("C_GenerateRandom", [&] {
        StateGuard g = lock_initialized();
        g->sessions.get(h);
        return CKR_RANDOM_NO_RNG;
    });
}
