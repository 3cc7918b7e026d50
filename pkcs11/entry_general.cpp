// C entry points: initialization, module/slot/token information, mechanisms, token management.
#include <algorithm>

#include "entry_export.h"
#include "entry_guard.h"
#include "mechanisms.h"
#include "module_state.h"
#include "slot_token.h"

using namespace keychaind::pkcs11;

namespace {

void check_slot(CK_SLOT_ID slot) {
    if (slot != kSlotId) throw Pkcs11Error(CKR_SLOT_ID_INVALID, "no slot " + std::to_string(slot));
}

}  // namespace

KEYCHAIND_P11_EXPORT CK_RV C_Initialize(CK_VOID_PTR pInitArgs) {
    return guarded("C_Initialize", [&] {
        initialize_module(pInitArgs);
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_Finalize(CK_VOID_PTR pReserved) {
    return guarded("C_Finalize", [&] {
        finalize_module(pReserved);
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_GetInfo(CK_INFO_PTR pInfo) {
    return guarded("C_GetInfo", [&] {
        CK_INFO& out = required(pInfo, "pInfo");
        lock_initialized();
        out = module_info();
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_GetSlotList(CK_BBOOL /*tokenPresent*/, CK_SLOT_ID_PTR pSlotList,
                                         CK_ULONG_PTR pulCount) {
    return guarded("C_GetSlotList", [&] {
        CK_ULONG& count = required(pulCount, "pulCount");
        lock_initialized();
        // One slot, and its token is always present (whether or not the daemon runs right now).
        if (pSlotList == nullptr) {
            count = 1;
            return CKR_OK;
        }
        if (count < 1) {
            count = 1;
            return CKR_BUFFER_TOO_SMALL;
        }
        pSlotList[0] = kSlotId;
        count = 1;
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo) {
    return guarded("C_GetSlotInfo", [&] {
        CK_SLOT_INFO& out = required(pInfo, "pInfo");
        lock_initialized();
        check_slot(slotID);
        out = slot_info();
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo) {
    return guarded("C_GetTokenInfo", [&] {
        CK_TOKEN_INFO& out = required(pInfo, "pInfo");
        StateGuard g = lock_initialized();
        check_slot(slotID);
        out = token_info(g->config, g->sessions.count(), g->sessions.read_write_count());
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR /*pSlot*/,
                                              CK_VOID_PTR /*pReserved*/) {
    return guarded("C_WaitForSlotEvent", [&] {
        lock_initialized();
        // The token never leaves its slot: there is no event to wait for.
        if (flags & CKF_DONT_BLOCK) return CKR_NO_EVENT;
        return CKR_FUNCTION_NOT_SUPPORTED;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_GetMechanismList(CK_SLOT_ID slotID,
                                              CK_MECHANISM_TYPE_PTR pMechanismList,
                                              CK_ULONG_PTR pulCount) {
    return guarded("C_GetMechanismList", [&] {
        CK_ULONG& count = required(pulCount, "pulCount");
        lock_initialized();
        check_slot(slotID);
        const auto mechanisms = all_mechanisms();
        if (pMechanismList == nullptr) {
            count = mechanisms.size();
            return CKR_OK;
        }
        if (count < mechanisms.size()) {
            count = mechanisms.size();
            return CKR_BUFFER_TOO_SMALL;
        }
        for (size_t i = 0; i < mechanisms.size(); ++i) pMechanismList[i] = mechanisms[i].type;
        count = mechanisms.size();
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type,
                                              CK_MECHANISM_INFO_PTR pInfo) {
    return guarded("C_GetMechanismInfo", [&] {
        CK_MECHANISM_INFO& out = required(pInfo, "pInfo");
        lock_initialized();
        check_slot(slotID);
        const Mechanism* m = find_mechanism(type);
        if (m == nullptr) return CKR_MECHANISM_INVALID;
        out = mechanism_info(*m);
        return CKR_OK;
    });
}

// The token is keychaind's keychain: it is not initialized, and has no PIN to set, from here.
KEYCHAIND_P11_EXPORT CK_RV C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR, CK_ULONG,
                                       CK_UTF8CHAR_PTR) {
    return guarded("C_InitToken", [&] {
        lock_initialized();
        check_slot(slotID);
        return CKR_FUNCTION_NOT_SUPPORTED;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR, CK_ULONG) {
    return guarded("C_InitPIN", [&] {
        StateGuard g = lock_initialized();
        g->sessions.get(hSession);
        return CKR_FUNCTION_NOT_SUPPORTED;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR, CK_ULONG,
                                    CK_UTF8CHAR_PTR, CK_ULONG) {
    return guarded("C_SetPIN", [&] {
        StateGuard g = lock_initialized();
        g->sessions.get(hSession);
        return CKR_FUNCTION_NOT_SUPPORTED;
    });
}
