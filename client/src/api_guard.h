// The C boundary: every kc_ call runs its body here, so no exception ever crosses into C.
#pragma once

#include <exception>
#include <new>
#include <string>

#include "client_error.h"
#include "keychain/client.h"
#include "protocol/message.h"
#include "session.h"

namespace keychain::detail {

// Runs body(); returns KC_OK, or the failure's code with its message in c->last_error.
template <class Body>
int guarded(kc_client* c, Body&& body) noexcept {
    if (c == nullptr) return KC_ERR_ARGUMENT;
    int code;
    std::string message;
    try {
        body();
        c->last_error.clear();
        return KC_OK;
    } catch (const ClientError& e) {
        code = e.code();
        message = e.what();
    } catch (const keychaind::wire::DecodeError& e) {
        code = KC_ERR_PROTOCOL;
        message = std::string("keychaind sent a malformed reply: ") + e.what();
    } catch (const std::bad_alloc&) {
        code = KC_ERR_NOMEM;
    } catch (const std::exception& e) {
        code = KC_ERR_INTERNAL;
        message = std::string("libkeychain: ") + e.what();
    } catch (...) {
        code = KC_ERR_INTERNAL;
        message = "libkeychain: unexpected failure";
    }
    try {
        c->last_error = code == KC_ERR_NOMEM ? "out of memory" : std::move(message);
    } catch (...) {
        c->last_error.clear();
    }
    return code;
}

}  // namespace keychain::detail
