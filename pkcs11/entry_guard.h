// guarded(): the wall between the module's C++ and its C callers. Every C_* body runs inside it.
#pragma once

#include <new>
#include <string>

#include "cryptoki.h"
#include "module_log.h"

namespace keychaind::pkcs11 {

// Runs body() (which returns a CK_RV) and turns whatever it throws into a CK_RV: Pkcs11Error
// into its own, bad_alloc into CKR_HOST_MEMORY, anything else into CKR_GENERAL_ERROR. Nothing
// ever unwinds into the caller's C code.
template <class Body>
CK_RV guarded(const char* function, Body&& body) noexcept {
    try {
        return body();
    } catch (const Pkcs11Error& e) {
        log_call_failure(function, e.rv(), e.what());
        return e.rv();
    } catch (const std::bad_alloc&) {
        log_call_failure(function, CKR_HOST_MEMORY, "out of memory");
        return CKR_HOST_MEMORY;
    } catch (const std::exception& e) {
        log_call_failure(function, CKR_GENERAL_ERROR, e.what());
        return CKR_GENERAL_ERROR;
    } catch (...) {
        return CKR_GENERAL_ERROR;
    }
}

// A required pointer argument, or CKR_ARGUMENTS_BAD.
template <class T>
T& required(T* p, const char* what) {
    if (p == nullptr) throw Pkcs11Error(CKR_ARGUMENTS_BAD, std::string(what) + " is NULL");
    return *p;
}

}  // namespace keychaind::pkcs11
