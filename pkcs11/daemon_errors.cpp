// The mapping from libkeychain's codes to CK_RV values.
#include "daemon_errors.h"

#include "module_state.h"

namespace keychaind::pkcs11 {

CK_RV rv_for_daemon_error(const DaemonError& e, DaemonCall call) {
    switch (e.code()) {
        case KC_ERR_NOMEM:
            return CKR_HOST_MEMORY;
        case KC_ERR_NO_SUCH_KEY:
        case KC_ERR_KEY_NOT_PRESENT:
            return call == DaemonCall::Find ? CKR_DEVICE_ERROR : CKR_DEVICE_REMOVED;
        default:
            break;
    }
    // C_FindObjectsInit has few codes to give: anything else is the device's failure.
    if (call == DaemonCall::Find) return CKR_DEVICE_ERROR;
    switch (e.code()) {
        case KC_ERR_DENIED:
            return CKR_FUNCTION_REJECTED;
        case KC_ERR_BAD_REQUEST:
            return call == DaemonCall::Decrypt ? CKR_ENCRYPTED_DATA_INVALID : CKR_DATA_INVALID;
        case KC_ERR_UNSUPPORTED:
        case KC_ERR_LOCKED:
        case KC_ERR_BUSY:
            return CKR_FUNCTION_FAILED;
        default:
            return CKR_DEVICE_ERROR;  // TOKEN_ERROR, TIMEOUT, INTERNAL, CONNECT, IO, PROTOCOL...
    }
}

void throw_daemon_error(const DaemonError& e, DaemonCall call, const std::string& key_id_hex) {
    const CK_RV rv = rv_for_daemon_error(e, call);
    if (e.key_gone() && !key_id_hex.empty()) {
        StateGuard g;
        g->objects.drop_key(key_id_hex);
    }
    throw Pkcs11Error(rv, e.what());
}

}  // namespace keychaind::pkcs11
