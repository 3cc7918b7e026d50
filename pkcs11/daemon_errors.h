// How the daemon's failures reach PKCS#11 callers: one CK_RV per failure and call.
#pragma once

#include <string>

#include "cryptoki.h"
#include "daemon_link.h"

namespace keychaind::pkcs11 {

enum class DaemonCall { Find, Sign, Decrypt };

// The CK_RV a C_* function returns for a failed request. A key that is gone (forgotten,
// expired, its device pulled) answers CKR_DEVICE_REMOVED from C_Sign/C_Decrypt. Connection
// failures are CKR_DEVICE_ERROR: the daemon is the device.
CK_RV rv_for_daemon_error(const DaemonError& e, DaemonCall call);

// The same, as a Pkcs11Error to throw; when the key is gone its objects leave the object table
// (its private key handle stays usable for when it comes back: see ObjectTable).
[[noreturn]] void throw_daemon_error(const DaemonError& e, DaemonCall call,
                                     const std::string& key_id_hex);

}  // namespace keychaind::pkcs11
