// The typed error every layer throws and the wire turns into an error reply.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace keychaind {

// Wire values; never renumber (docs/protocol.md).
enum class ErrorCode : uint8_t {
    Ok = 0,
    NoSuchKey = 1,
    KeyNotPresent = 2,
    Denied = 3,
    BadRequest = 4,
    Unsupported = 5,
    TokenError = 6,
    Locked = 7,
    Busy = 8,
    Timeout = 9,
    Internal = 10,
};

std::string_view error_code_name(ErrorCode c) noexcept;

// Carries a code and a message that is safe to show a client: it never holds secret bytes.
class KeychainError : public std::runtime_error {
public:
    KeychainError(ErrorCode code, const std::string& message)
        : std::runtime_error(message), code_(code) {}
    ErrorCode code() const noexcept { return code_; }

private:
    ErrorCode code_;
};

}  // namespace keychaind
