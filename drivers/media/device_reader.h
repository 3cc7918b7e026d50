// Reading one device: pin the medium, mount it privately (or use the host's mount), read its
// keychain files.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "file/keychain_file.h"
#include "media/device_monitor.h"

namespace keychaind::media {

// Files read from one device at most: a stick with thousands of names cannot stall the daemon.
inline constexpr size_t kMaxKeychainFilesPerDevice = 64;

// "<ID_SERIAL, or the device node>/<ID_FS_UUID>/": what the locations of a device's keys start
// with. Keys are recorded as KeyOrigin{"device", prefix + "<file name>#<index>"}.
std::string device_location_prefix(const BlockDevice& d);

struct DeviceKey {
    std::string location;  // prefix + file name + "#" + index
    file::ParsedEntry entry;
};

struct DeviceReadResult {
    std::vector<DeviceKey> keys;
    std::vector<std::string> problems;  // one line each, already logged; never a secret
    size_t files = 0;                   // keychain files looked at
    std::string how;                    // "mounted privately", "through the host's mount at …"
};

// The device as a whole could not be read; the message is the reason.
class DeviceReadError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Opens the device node and checks that it is still the device udev announced (same dev_t, same
// DISKSEQ, so a medium swapped since the event is never read under the old one's name); reads
// through the host's mount of it if there is one, else mounts it read-only in `staging_dir`;
// reads the root's *.4DKeyChain files without following links; unmounts before returning.
// Throws DeviceReadError, also when `deadline` passes between two steps.
DeviceReadResult read_device(const BlockDevice& d, const std::string& staging_dir,
                             std::chrono::steady_clock::time_point deadline);

}  // namespace keychaind::media
