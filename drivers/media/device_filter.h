// DeviceFilter: which block devices may carry keys ([devices] in the config).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "media/device_monitor.h"

namespace keychaind::media {

// The kernel driver that mounts what blkid calls `id_fs_type` ("ntfs" is mounted by "ntfs3"),
// or "" when keychaind mounts no such filesystem.
std::string kernel_fs_type(std::string_view id_fs_type);

class DeviceFilter {
public:
    explicit DeviceFilter(DevicesConfig cfg) : cfg_(std::move(cfg)) {}

    // nullopt when the device may carry keys; otherwise why not. The reason is "" for devices
    // that hold no filesystem at all (a whole disk with partitions, swap, RAID members): they
    // are not worth a log line.
    std::optional<std::string> refusal(const BlockDevice& d) const;

    const DevicesConfig& config() const { return cfg_; }

private:
    DevicesConfig cfg_;
};

}  // namespace keychaind::media
