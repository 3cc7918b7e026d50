// kc_connect, kc_close, settings, and the texts of the return codes.
#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include "client_error.h"
#include "keychain/client.h"
#include "session.h"

namespace {
constexpr const char* kDefaultSocket = "/run/keychaind/keychaind.sock";
// kc_connect has no client to hold its error; kc_last_error(NULL) reads it.
thread_local std::string t_connect_error;

void set_connect_error(const char* text) noexcept {
    try {
        t_connect_error = text;
    } catch (...) {
        t_connect_error.clear();
    }
}
}  // namespace

extern "C" {

KC_API int kc_connect(const char* socket_path, kc_client** out) {
    if (out == nullptr) {
        set_connect_error("kc_connect: out is NULL");
        return KC_ERR_ARGUMENT;
    }
    *out = nullptr;
    try {
        auto c = std::make_unique<kc_client>();
        if (socket_path != nullptr) {
            c->socket_path = socket_path;
        } else if (const char* env = secure_getenv("KEYCHAIND_SOCKET"); env != nullptr && *env != '\0') {
            c->socket_path = env;
        } else {
            c->socket_path = kDefaultSocket;
        }
        c->conn.open(c->socket_path, c->timeout_ms);
        *out = c.release();
        t_connect_error.clear();
        return KC_OK;
    } catch (const keychain::detail::ClientError& e) {
        set_connect_error(e.what());
        return e.code();
    } catch (const std::bad_alloc&) {
        set_connect_error("out of memory");
        return KC_ERR_NOMEM;
    } catch (const std::exception& e) {
        set_connect_error(e.what());
        return KC_ERR_CONNECT;
    }
}

KC_API void kc_close(kc_client* c) { delete c; }

KC_API void kc_set_timeout(kc_client* c, uint32_t timeout_ms) {
    if (c != nullptr) c->timeout_ms = timeout_ms;
}

KC_API const char* kc_last_error(const kc_client* c) {
    return c != nullptr ? c->last_error.c_str() : t_connect_error.c_str();
}

KC_API const char* kc_strerror(int code) {
    switch (code) {
        case KC_OK: return "success";
        case KC_ERR_NO_SUCH_KEY: return "no such key";
        case KC_ERR_KEY_NOT_PRESENT: return "the key is not present";
        case KC_ERR_DENIED: return "permission denied by keychaind";
        case KC_ERR_BAD_REQUEST: return "bad request";
        case KC_ERR_UNSUPPORTED: return "the key cannot do this";
        case KC_ERR_TOKEN_ERROR: return "the HSM token failed";
        case KC_ERR_LOCKED: return "keychaind is locked";
        case KC_ERR_BUSY: return "keychaind is busy; retry later";
        case KC_ERR_TIMEOUT: return "timed out";
        case KC_ERR_INTERNAL: return "keychaind failed; see its log";
        case KC_ERR_CONNECT: return "cannot connect to keychaind";
        case KC_ERR_IO: return "the connection to keychaind failed";
        case KC_ERR_PROTOCOL: return "keychaind sent an invalid reply";
        case KC_ERR_ARGUMENT: return "invalid argument";
        case KC_ERR_NOMEM: return "out of memory";
        default: return "unknown error";
    }
}

KC_API const char* kc_code_name(int code) {
    switch (code) {
        case KC_OK: return "OK";
        case KC_ERR_NO_SUCH_KEY: return "NO_SUCH_KEY";
        case KC_ERR_KEY_NOT_PRESENT: return "KEY_NOT_PRESENT";
        case KC_ERR_DENIED: return "DENIED";
        case KC_ERR_BAD_REQUEST: return "BAD_REQUEST";
        case KC_ERR_UNSUPPORTED: return "UNSUPPORTED";
        case KC_ERR_TOKEN_ERROR: return "TOKEN_ERROR";
        case KC_ERR_LOCKED: return "LOCKED";
        case KC_ERR_BUSY: return "BUSY";
        case KC_ERR_TIMEOUT: return "TIMEOUT";
        case KC_ERR_INTERNAL: return "INTERNAL";
        case KC_ERR_CONNECT: return "CONNECT";
        case KC_ERR_IO: return "IO";
        case KC_ERR_PROTOCOL: return "PROTOCOL";
        case KC_ERR_ARGUMENT: return "ARGUMENT";
        case KC_ERR_NOMEM: return "NOMEM";
        default: return "UNKNOWN";
    }
}

}  // extern "C"
