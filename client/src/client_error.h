// ClientError: a failed call inside libkeychain, turned into a kc_ return code at the C boundary.
#pragma once

#include <stdexcept>
#include <string>

namespace keychain::detail {

class ClientError : public std::runtime_error {
public:
    ClientError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
    int code() const noexcept { return code_; }

private:
    int code_;
};

}  // namespace keychain::detail
