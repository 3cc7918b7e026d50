// C entry points: sessions and login.
#include "entry_export.h"
#include "entry_guard.h"
#include "module_state.h"

using namespace keychaind::pkcs11;

KEYCHAIND_P11_EXPORT CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags,
                                         CK_VOID_PTR /*pApplication*/, CK_NOTIFY /*Notify*/,
                                         CK_SESSION_HANDLE_PTR phSession) {
    return guarded("C_OpenSession", [&] {
        CK_SESSION_HANDLE& out = required(phSession, "phSession");
        StateGuard g = lock_initialized();
        if (slotID != kSlotId) return CKR_SLOT_ID_INVALID;
        if (!(flags & CKF_SERIAL_SESSION)) return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
        if (!(flags & CKF_RW_SESSION) && g->login == LoginState::SecurityOfficer)
            return CKR_SESSION_READ_WRITE_SO_EXISTS;
        // Read/write sessions are opened (pkcs11-tool --test asks for one) though nothing on
        // this token can be written: keys come and go through the daemon.
        out = g->sessions.open(flags);
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_CloseSession(CK_SESSION_HANDLE hSession) {
    return guarded("C_CloseSession", [&] {
        StateGuard g = lock_initialized();
        if (!g->sessions.close(hSession)) return CKR_SESSION_HANDLE_INVALID;
        // Closing an application's last session logs it out (v2.40 §5.6).
        if (g->sessions.count() == 0) g->login = LoginState::None;
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_CloseAllSessions(CK_SLOT_ID slotID) {
    return guarded("C_CloseAllSessions", [&] {
        StateGuard g = lock_initialized();
        if (slotID != kSlotId) return CKR_SLOT_ID_INVALID;
        g->sessions.close_all();
        g->login = LoginState::None;
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo) {
    return guarded("C_GetSessionInfo", [&] {
        CK_SESSION_INFO& out = required(pInfo, "pInfo");
        StateGuard g = lock_initialized();
        const Session& s = g->sessions.get(hSession);
        out = CK_SESSION_INFO{};
        out.slotID = kSlotId;
        out.flags = s.flags;
        out.ulDeviceError = 0;
        switch (g->login) {
            case LoginState::None:
                out.state = s.read_write() ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
                break;
            case LoginState::User:
                out.state = s.read_write() ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
                break;
            case LoginState::SecurityOfficer:
                out.state = CKS_RW_SO_FUNCTIONS;
                break;
        }
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR,
                                               CK_ULONG_PTR) {
    return guarded("C_GetOperationState", [&] {
        StateGuard g = lock_initialized();
        g->sessions.get(hSession);
        return CKR_STATE_UNSAVEABLE;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR, CK_ULONG,
                                               CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    return guarded("C_SetOperationState", [&] {
        StateGuard g = lock_initialized();
        g->sessions.get(hSession);
        return CKR_SAVED_STATE_INVALID;
    });
}

// Login is not required: the daemon decides, by the caller's uid, which keys it may use. A
// caller that insists on logging in may, as user or security officer, with any PIN; the PIN is
// never read, and logging in changes nothing but the session states reported.
KEYCHAIND_P11_EXPORT CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType,
                                   CK_UTF8CHAR_PTR /*pPin*/, CK_ULONG /*ulPinLen*/) {
    return guarded("C_Login", [&] {
        StateGuard g = lock_initialized();
        g->sessions.get(hSession);
        switch (userType) {
            case CKU_USER:
            case CKU_SO: {
                const LoginState want =
                    userType == CKU_USER ? LoginState::User : LoginState::SecurityOfficer;
                if (g->login == want) return CKR_USER_ALREADY_LOGGED_IN;
                if (g->login != LoginState::None) return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
                if (want == LoginState::SecurityOfficer && g->sessions.read_only_count() > 0)
                    return CKR_SESSION_READ_ONLY_EXISTS;
                g->login = want;
                return CKR_OK;
            }
            case CKU_CONTEXT_SPECIFIC:
                // No key here needs per-operation authentication (CKA_ALWAYS_AUTHENTICATE false).
                return CKR_OK;
            default:
                return CKR_USER_TYPE_INVALID;
        }
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_Logout(CK_SESSION_HANDLE hSession) {
    return guarded("C_Logout", [&] {
        StateGuard g = lock_initialized();
        g->sessions.get(hSession);
        if (g->login == LoginState::None) return CKR_USER_NOT_LOGGED_IN;
        g->login = LoginState::None;
        return CKR_OK;
    });
}

// Legacy parallel-function calls (v2.40 §5.14).
KEYCHAIND_P11_EXPORT CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE) {
    return CKR_FUNCTION_NOT_PARALLEL;
}
KEYCHAIND_P11_EXPORT CK_RV C_CancelFunction(CK_SESSION_HANDLE) { return CKR_FUNCTION_NOT_PARALLEL; }
