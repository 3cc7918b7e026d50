// The answers of C_GetInfo, C_GetSlotInfo and C_GetTokenInfo.
#pragma once

#include <string>

#include "cryptoki.h"
#include "module_config.h"

namespace keychaind::pkcs11 {

CK_INFO module_info();
CK_SLOT_INFO slot_info();
// Session counts come from the caller (it holds the module lock); the serial number is derived
// from the socket path, so two daemons on one machine are two distinct tokens.
CK_TOKEN_INFO token_info(const ModuleConfig& config, size_t sessions, size_t rw_sessions);

}  // namespace keychaind::pkcs11
