// Config: the daemon's TOML configuration (docs/config.md lists every option).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit_log.h"
#include "core/log.h"

namespace keychaind {

struct IdentityConfig {
    std::string name;
    std::string key_path;
    std::string certificate_path;  // empty: no certificate
};

// One [[devices.match]] rule: a device matches when every field given here matches (empty: any).
struct DeviceMatch {
    std::string serial;     // udev ID_SERIAL, exact
    std::string vendor_id;  // udev ID_VENDOR_ID, 4 hex digits, any case
    std::string model_id;   // udev ID_MODEL_ID, 4 hex digits, any case
    std::string fs_uuid;    // udev ID_FS_UUID, any case
    std::string fs_label;   // udev ID_FS_LABEL, exact
};

// [devices]: removable devices whose root holds .4DKeyChain files (docs/devices.md).
struct DevicesConfig {
    bool enable = true;
    bool allow_non_usb = false;  // also devices neither on USB nor removable (loop devices, disks)
    bool require_tag = false;    // only devices udev tagged "keychaind" (udev-rules/70-keychaind.rules)
    std::vector<std::string> filesystems = {"vfat", "exfat", "ext2", "ext3", "ext4", "ntfs3", "btrfs", "xfs"};
    std::vector<DeviceMatch> match;  // empty: every device the other options let through
    uint32_t read_timeout_ms = 10000;  // mount + read + parse of one device
};

// One [[pkcs11.token]]: a PKCS#11 token whose keys stay inside it (docs/tokens.md).
struct TokenConfig {
    std::string name;               // unique; in logs and PROVIDE's TOKEN_URI
    std::string module;             // a p11-kit registry name, or an absolute path in module_paths
    std::string uri;                // pkcs11: URI with token attributes only
    std::vector<std::string> keys;  // pkcs11: object URIs; empty: every private key and AES key
    std::string pin_file;           // empty: the PIN comes from PROVIDE
    uint32_t sessions = 4;          // session pool size
};

// [pkcs11]
struct Pkcs11Config {
    std::vector<std::string> module_paths;  // modules that may be loaded by path
    uint32_t poll_ms = 1000;                // presence poll when C_WaitForSlotEvent cannot block
    uint32_t call_timeout_ms = 5000;        // a token call that takes longer answers TOKEN_ERROR
    std::vector<TokenConfig> tokens;
};

// Filesystem types [devices] filesystems may name: those keychaind knows how to mount read-only
// without the driver writing to the device.
const std::vector<std::string>& supported_device_filesystems();

struct Config {
    std::string path;  // the file this came from

    // [daemon]
    std::string socket_path = "/run/keychaind/keychaind.sock";
    mode_t socket_mode = 0660;
    std::string socket_group = "keychain";  // empty: leave the group as created
    unsigned workers = 0;                   // 0: one per CPU
    bool allow_unlocked_memory = false;     // demo only: run even if memory cannot be locked
    log::Level log_level = log::Level::Info;
    // The policy file (docs/policy.md). When the file does not name one and the default does not
    // exist, the built-in policy applies; a file named here must exist; "" names the built-in
    // policy explicitly.
    std::string policy_path = "/etc/keychaind/policy.conf";
    bool policy_path_set = false;  // the file gave `policy` (then policy_path "" is the built-in)
    // Whether policy_path names a file to load; false: the built-in policy applies.
    bool uses_policy_file() const;

    // [limits]
    uint32_t max_frame_bytes = 64 * 1024;
    uint32_t max_in_flight = 128;
    uint32_t max_connections_per_uid = 256;
    uint32_t max_connections = 1024;
    uint32_t max_output_bytes = 4 * 1024 * 1024;  // unread replies before a client is dropped
    uint32_t frame_timeout_ms = 10000;            // a frame begun must be complete within this
    uint32_t max_wait_ms = 3600 * 1000;

    // [keys]
    std::vector<std::string> directories;
    std::vector<IdentityConfig> identities;

    // [devices]
    DevicesConfig devices;

    // [pkcs11]
    Pkcs11Config pkcs11;

    // [audit]
    AuditConfig audit;
};

// "FILE:LINE: reason" (or "FILE: reason" when no line applies).
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A config file larger than this is refused (it is a few KiB at most).
constexpr size_t kMaxConfigFileBytes = 1024 * 1024;

// Reads and validates a config file: a regular file, not a symlink, at most kMaxConfigFileBytes. Relative paths inside it are taken relative to the file's
// directory. Throws ConfigError.
Config load_config(const std::string& path);
// The same from the file's text; `path` names it in errors and is the base of relative paths.
Config parse_config(std::string_view text, const std::string& path);

}  // namespace keychaind
