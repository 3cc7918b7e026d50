// C entry points: finding objects and reading their attributes. The object table is refreshed
// from the daemon at each C_FindObjectsInit, so keys that came or went since show up or vanish.
#include <algorithm>

#include "daemon_errors.h"
#include "entry_export.h"
#include "entry_guard.h"
#include "module_log.h"
#include "module_state.h"

using namespace keychaind::pkcs11;

namespace {

void check_template(const CK_ATTRIBUTE* tmpl, CK_ULONG count, bool search) {
    const std::string problem = template_problem(tmpl, count, search);
    if (!problem.empty()) throw Pkcs11Error(CKR_ARGUMENTS_BAD, problem);
}

// LIST_KEYS (and GET_PUBLIC for keys new to the module), then the table is rebuilt. The module
// lock is not held while the daemon answers. False when the daemon cannot be reached: the token
// then shows no objects, but the table (and every handle in it) is kept for when it is back, so
// a daemon restart does not invalidate the handles a server holds. Every p11-kit client loads
// this module, and one that lists all tokens must not fail because keychaind is not running.
bool refresh_objects() {
    std::shared_ptr<DaemonLink> link;
    KeyRecords known;
    {
        StateGuard g = lock_initialized();
        link = g->link;
        known = g->objects.records();
    }
    KeyRecords records;
    try {
        records = fetch_key_records(*link, known);
    } catch (const DaemonError& e) {
        if (e.code() == KC_ERR_CONNECT) {
            log_debug(std::string("keychaind cannot be reached; the token shows no objects: ") +
                      e.what());
            return false;
        }
        throw_daemon_error(e, DaemonCall::Find, "");
    }
    const std::vector<NamedObject> objects = build_token_objects(records);
    StateGuard g = lock_initialized();
    if (g->link == link) g->objects.replace(std::move(records), objects);
    return true;
}

const TokenObject& object_of(ModuleState& st, CK_OBJECT_HANDLE handle) {
    const TokenObject* o = st.objects.find(handle).get();
    if (o == nullptr)
        throw Pkcs11Error(CKR_OBJECT_HANDLE_INVALID, "no object " + std::to_string(handle));
    return *o;
}

}  // namespace

KEYCHAIND_P11_EXPORT CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
                                             CK_ULONG ulCount) {
    return guarded("C_FindObjectsInit", [&] {
        check_template(pTemplate, ulCount, true);
        {
            StateGuard g = lock_initialized();
            if (g->sessions.get(hSession).find) return CKR_OPERATION_ACTIVE;
        }
        const bool reachable = refresh_objects();
        StateGuard g = lock_initialized();
        Session& s = g->sessions.get(hSession);
        if (s.find) return CKR_OPERATION_ACTIVE;
        s.find = FindState{
            reachable ? g->objects.match(pTemplate, ulCount) : std::vector<CK_OBJECT_HANDLE>{}, 0};
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
                                         CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount) {
    return guarded("C_FindObjects", [&] {
        CK_ULONG& found = required(pulObjectCount, "pulObjectCount");
        if (ulMaxObjectCount > 0 && phObject == nullptr) return CKR_ARGUMENTS_BAD;
        StateGuard g = lock_initialized();
        Session& s = g->sessions.get(hSession);
        if (!s.find) return CKR_OPERATION_NOT_INITIALIZED;
        FindState& f = *s.find;
        const size_t n = std::min<size_t>(ulMaxObjectCount, f.handles.size() - f.next);
        std::copy_n(f.handles.begin() + static_cast<std::ptrdiff_t>(f.next), n, phObject);
        f.next += n;
        found = n;
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession) {
    return guarded("C_FindObjectsFinal", [&] {
        StateGuard g = lock_initialized();
        Session& s = g->sessions.get(hSession);
        if (!s.find) return CKR_OPERATION_NOT_INITIALIZED;
        s.find.reset();
        return CKR_OK;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                               CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount) {
    return guarded("C_GetAttributeValue", [&] {
        check_template(pTemplate, ulCount, false);
        StateGuard g = lock_initialized();
        g->sessions.get(hSession);
        return object_of(*g, hObject).attributes.read_into(pTemplate, ulCount);
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                           CK_ULONG_PTR pulSize) {
    return guarded("C_GetObjectSize", [&] {
        CK_ULONG& size = required(pulSize, "pulSize");
        StateGuard g = lock_initialized();
        g->sessions.get(hSession);
        object_of(*g, hObject);
        size = CK_UNAVAILABLE_INFORMATION;  // the objects live in the daemon, not in token memory
        return CKR_OK;
    });
}

// Objects come from the daemon's keychain only; none is created, copied, changed or destroyed here.
KEYCHAIND_P11_EXPORT CK_RV C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR, CK_ULONG,
                                          CK_OBJECT_HANDLE_PTR) {
    return guarded("C_CreateObject", [&] {
        StateGuard g = lock_initialized();
        g->sessions.get(hSession);
        return CKR_FUNCTION_NOT_SUPPORTED;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                        CK_ATTRIBUTE_PTR, CK_ULONG, CK_OBJECT_HANDLE_PTR) {
    return guarded("C_CopyObject", [&] {
        StateGuard g = lock_initialized();
        g->sessions.get(hSession);
        object_of(*g, hObject);
        return CKR_ACTION_PROHIBITED;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject) {
    return guarded("C_DestroyObject", [&] {
        StateGuard g = lock_initialized();
        g->sessions.get(hSession);
        object_of(*g, hObject);
        return CKR_ACTION_PROHIBITED;
    });
}

KEYCHAIND_P11_EXPORT CK_RV C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                               CK_ATTRIBUTE_PTR, CK_ULONG) {
    return guarded("C_SetAttributeValue", [&] {
        StateGuard g = lock_initialized();
        g->sessions.get(hSession);
        object_of(*g, hObject);
        return CKR_ACTION_PROHIBITED;
    });
}
