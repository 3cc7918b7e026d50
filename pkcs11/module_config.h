// ModuleConfig: where the daemon is and what the token is called (docs/pkcs11.md).
#pragma once

#include <cstdint>
#include <string>

namespace keychaind::pkcs11 {

inline constexpr const char* kSystemSocket = "/run/keychaind/keychaind.sock";
inline constexpr const char* kDefaultTokenLabel = "keychaind";

struct ModuleConfig {
    std::string socket_path = kSystemSocket;
    std::string token_label = kDefaultTokenLabel;  // at most 32 bytes (CK_TOKEN_INFO's label)
    uint32_t timeout_ms = 30000;                   // how long one call waits for the daemon
};

// The config file: $KEYCHAIND_PKCS11_CONFIG, else the installed default (a missing default file
// means defaults). The socket: $KEYCHAIND_SOCKET, else the file's `socket`, else the system path.
// Throws Pkcs11Error(CKR_GENERAL_ERROR) naming the file and the problem.
ModuleConfig load_module_config();

}  // namespace keychaind::pkcs11
