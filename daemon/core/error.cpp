// Names of the wire error codes.
#include "core/error.h"

namespace keychaind {

std::string_view error_code_name(ErrorCode c) noexcept {
    switch (c) {
        case ErrorCode::Ok: return "OK";
        case ErrorCode::NoSuchKey: return "NO_SUCH_KEY";
        case ErrorCode::KeyNotPresent: return "KEY_NOT_PRESENT";
        case ErrorCode::Denied: return "DENIED";
        case ErrorCode::BadRequest: return "BAD_REQUEST";
        case ErrorCode::Unsupported: return "UNSUPPORTED";
        case ErrorCode::TokenError: return "TOKEN_ERROR";
        case ErrorCode::Locked: return "LOCKED";
        case ErrorCode::Busy: return "BUSY";
        case ErrorCode::Timeout: return "TIMEOUT";
        case ErrorCode::Internal: return "INTERNAL";
    }
    return "UNKNOWN";
}

}  // namespace keychaind
