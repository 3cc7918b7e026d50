// Where a PKCS#11 module comes from: a p11-kit registry name's file, and the checks a module
// file and its directories must pass before it is loaded into the daemon.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace keychaind::token {

// The file to load for `path`: its directory resolved (realpath; /lib -> /usr/lib is fine), the
// file itself not a symlink, a regular file, and it and every directory above it owned by root
// (or `trusted_uid`, for tests) and not writable by group or others — except a directory with the
// sticky bit (/tmp), which others may write but not replace entries in. Throws TokenFault with the
// reason ("/opt/x/lib.so: directory /opt/x is writable by group or others (mode 0775)").
std::string checked_module_path(const std::string& path, uid_t trusted_uid = 0);

// Where p11-kit looks for module registrations, most important last: its package directory
// (/usr/share/p11-kit/modules) and its system directory (/etc/pkcs11/modules).
struct ModuleRegistryDirs {
    std::vector<std::string> config_dirs;
    std::string module_dir;  // where a relative "module:" path points (/usr/lib/<triplet>/pkcs11)
};
const ModuleRegistryDirs& system_module_registry();

// The module file a p11-kit registry name stands for: the "module:" line of NAME.module in the
// registry's directories (a later directory overrides an earlier one, as p11-kit merges them).
// Throws TokenFault when no registration names a module.
std::string registered_module_path(const std::string& name,
                                   const ModuleRegistryDirs& dirs = system_module_registry());

}  // namespace keychaind::token
