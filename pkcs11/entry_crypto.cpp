// C entry points: signing (single- and multi-part) and RSA-OAEP decryption. An operation leaves
// its session while the daemon works on it, so the module lock is never held over a request.
#include <cstring>

#include "daemon_errors.h"
#include "entry_export.h"
#include "entry_guard.h"
#include "module_state.h"

using namespace keychaind::pkcs11;

namespace {

PrivateKeyRef private_key_of(ModuleState& st, CK_OBJECT_HANDLE handle) {
    auto key = st.objects.private_key(handle);
    if (!key) throw Pkcs11Error(CKR_KEY_HANDLE_INVALID, "no private key " + std::to_string(handle));
    return std::move(*key);
}

// Puts an operation back into its session after work done without the lock, unless the session
// was closed or given another operation meanwhile.
template <class Op>
void put_back(CK_SESSION_HANDLE h, std::unique_ptr<Op> op, std::unique_ptr<Op> Session::*slot) {
    StateGuard g;
    if (!g->initialized) return;
    Session* s = g->sessions.find(h);
    if (s != nullptr && !(s->*slot)) s->*slot = std::move(op);
}

// The end of C_Sign and C_SignFinal. A size query (pSignature NULL) or a short buffer is answered
// from the known signature length and keeps the operation; anything else ends it, success or not.
CK_RV finish_signature(CK_SESSION_HANDLE h, std::span<const uint8_t> last_data,
                       CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen) {
    std::unique_ptr<SignOperation> op;
    std::shared_ptr<DaemonLink> link;
    {
        StateGuard g = lock_initialized();
        Session& s = g->sessions.get(h);
        if (!s.sign) return CKR_OPERATION_NOT_INITIALIZED;
        if (pulSignatureLen == nullptr) {
            s.sign.reset();
            return CKR_ARGUMENTS_BAD;
        }
        const size_t length = s.sign->signature_length();
        if (pSignature == nullptr) {
            *pulSignatureLen = length;
            return CKR_OK;
        }
        if (*pulSignatureLen < length) {
            *pulSignatureLen = length;
            return CKR_BUFFER_TOO_SMALL;
        }
        op = std::move(s.sign);
        link = g->link;
    }
    op->update(last_data);
    const DaemonSignRequest request = op->finish();
    std::vector<uint8_t> daemon_signature;
    try {
        daemon_signature = link->sign(op->key().id_hex, request.algorithm, request.input);
    } catch (const DaemonError& e) {
        throw_daemon_error(e, DaemonCall::Sign, op->key().id_hex);
    }
    const std::vector<uint8_t> signature = op->to_pkcs11_signature(daemon_signature);
    if (signature.size() > *pulSignatureLen)
        throw Pkcs11Error(CKR_GENERAL_ERROR, "signature longer than announced");
    std::memcpy(pSignature, signature.data(), signature.size());
    *pulSignatureLen = signature.size();
    return CKR_OK;
}

std::span<const uint8_t> input(CK_BYTE_PTR p, CK_ULONG len) {
    if (p == nullptr && len != 0) throw Pkcs11Error(CKR_ARGUMENTS_BAD, "input pointer is NULL");
    return {p, p == nullptr ? 0 : len};
}

}  // namespace

KEYCHAIND_P11_EXPORT CK_RV C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                      CK_OBJECT_HANDLE hKey) {
    return guarded("C_SignInit", [&] {
        StateGuard g = lock_initialized();
        Session& s = g->sessions.get(hSession);
        if (pMechanism == nullptr) {  // v3.0's way to cancel an operation; harmless in 2.40
            s.sign.reset();
            return CKR_OK;
        }
        if (s.sign) return CKR_OPERATION_ACTIVE;
        s.sign = std::make_unique<SignOperation>(*pMechanism, private_key_of(*g, hKey));
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                                  CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen) {
    return guarded("C_Sign", [&] {
        std::span<const uint8_t> data;
        try {
            data = input(pData, ulDataLen);
        } catch (const Pkcs11Error&) {
            StateGuard g = lock_initialized();
            g->sessions.get(hSession).sign.reset();
            throw;
        }
        return finish_signature(hSession, data, pSignature, pulSignatureLen);
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
                                        CK_ULONG ulPartLen) {
    return guarded("C_SignUpdate", [&] {
        std::unique_ptr<SignOperation> op;
        {
            StateGuard g = lock_initialized();
            Session& s = g->sessions.get(hSession);
            if (!s.sign) return CKR_OPERATION_NOT_INITIALIZED;
            op = std::move(s.sign);  // an error below ends the operation, as PKCS#11 says
        }
        op->update(input(pPart, ulPartLen));
        put_back(hSession, std::move(op), &Session::sign);
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
                                       CK_ULONG_PTR pulSignatureLen) {
    return guarded("C_SignFinal",
                   [&] { return finish_signature(hSession, {}, pSignature, pulSignatureLen); });
}

KEYCHAIND_P11_EXPORT CK_RV C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                         CK_OBJECT_HANDLE hKey) {
    return guarded("C_DecryptInit", [&] {
        StateGuard g = lock_initialized();
        Session& s = g->sessions.get(hSession);
        if (pMechanism == nullptr) {
            s.decrypt.reset();
            return CKR_OK;
        }
        if (s.decrypt) return CKR_OPERATION_ACTIVE;
        s.decrypt = std::make_unique<DecryptOperation>(*pMechanism, private_key_of(*g, hKey));
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData,
                                     CK_ULONG ulEncryptedDataLen, CK_BYTE_PTR pData,
                                     CK_ULONG_PTR pulDataLen) {
    return guarded("C_Decrypt", [&] {
        std::unique_ptr<DecryptOperation> op;
        std::shared_ptr<DaemonLink> link;
        {
            StateGuard g = lock_initialized();
            Session& s = g->sessions.get(hSession);
            if (!s.decrypt) return CKR_OPERATION_NOT_INITIALIZED;
            if (pulDataLen == nullptr || (pEncryptedData == nullptr && ulEncryptedDataLen != 0)) {
                s.decrypt.reset();
                return CKR_ARGUMENTS_BAD;
            }
            if (ulEncryptedDataLen != s.decrypt->ciphertext_length()) {
                s.decrypt.reset();
                return CKR_ENCRYPTED_DATA_LEN_RANGE;
            }
            if (pData == nullptr) {
                *pulDataLen = s.decrypt->max_plaintext_length();
                return CKR_OK;
            }
            op = std::move(s.decrypt);
            link = g->link;
        }
        size_t n = 0;
        try {
            n = link->decrypt(op->key().id_hex, op->daemon_algorithm(),
                              {pEncryptedData, ulEncryptedDataLen}, {pData, *pulDataLen});
        } catch (const DaemonError& e) {
            throw_daemon_error(e, DaemonCall::Decrypt, op->key().id_hex);
        }
        if (n > *pulDataLen) {
            // Nothing was copied; the caller may ask again with room for n bytes.
            *pulDataLen = n;
            put_back(hSession, std::move(op), &Session::decrypt);
            return CKR_BUFFER_TOO_SMALL;
        }
        *pulDataLen = n;
        return CKR_OK;
    });
}

// RSA-OAEP is a single-part mechanism.
KEYCHAIND_P11_EXPORT CK_RV C_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR, CK_ULONG,
                                           CK_BYTE_PTR, CK_ULONG_PTR) {
    return guarded("C_DecryptUpdate", [&] {
        StateGuard g = lock_initialized();
        Session& s = g->sessions.get(hSession);
        if (!s.decrypt) return CKR_OPERATION_NOT_INITIALIZED;
        s.decrypt.reset();
        return CKR_FUNCTION_NOT_SUPPORTED;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR, CK_ULONG_PTR) {
    return guarded("C_DecryptFinal", [&] {
        StateGuard g = lock_initialized();
        Session& s = g->sessions.get(hSession);
        if (!s.decrypt) return CKR_OPERATION_NOT_INITIALIZED;
        s.decrypt.reset();
        return CKR_FUNCTION_NOT_SUPPORTED;
    });
}
