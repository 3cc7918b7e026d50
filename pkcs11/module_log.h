// The module's log: one line per event on standard error, never a secret.
#pragma once

#include <string_view>

namespace keychaind::pkcs11 {

// Debug lines (why a call failed, what the daemon said) appear only when the environment
// variable KEYCHAIND_PKCS11_DEBUG is set and not empty: a module must not chatter into its host
// server's standard error by default.
bool debug_log_enabled() noexcept;
void log_debug(std::string_view line) noexcept;
// Problems the administrator must see (a broken module config file), always written.
void log_problem(std::string_view line) noexcept;
// The debug line for a C_* call that failed: the function, its CK_RV, the detail.
void log_call_failure(const char* function, unsigned long rv, const char* detail) noexcept;

}  // namespace keychaind::pkcs11
