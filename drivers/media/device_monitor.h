// DeviceMonitor: block devices as udev sees them — enumeration now, then added/changed/removed
// events.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace keychaind::media {

// One block device (a disk or a partition) as udev described it in one event or enumeration.
struct BlockDevice {
    dev_t devnum = 0;
    uint64_t diskseq = 0;  // the kernel's DISKSEQ of the medium; 0 when udev did not give one
    std::string devnode;   // "/dev/sdb1"
    std::string syspath;
    std::map<std::string, std::string, std::less<>> properties;  // ID_FS_TYPE, ID_SERIAL, ...
    std::set<std::string, std::less<>> tags;                     // current udev tags
    bool removable = false;  // sysfs "removable" of the disk (for a partition, of its disk)

    // "" when absent.
    std::string property(std::string_view name) const;
    bool is_filesystem() const { return property("ID_FS_USAGE") == "filesystem"; }
    // "/dev/sdb1 (8:17, diskseq 12)": for log lines.
    std::string text() const;
};

enum class DeviceAction { Added, Changed, Removed };

struct DeviceEvent {
    DeviceAction action;
    BlockDevice device;
};

class DeviceMonitor {
public:
    virtual ~DeviceMonitor() = default;
    // Readable when events are waiting (for the event loop's epoll).
    virtual int fd() const = 0;
    // The events waiting now; never blocks. Loop thread only.
    virtual std::vector<DeviceEvent> receive() = 0;
    // Block devices present now that udev has processed. Any thread.
    virtual std::vector<BlockDevice> enumerate() = 0;
    // True (once) when events were lost since the last call (a full socket): rescan everything.
    virtual bool take_events_lost() = 0;
};

}  // namespace keychaind::media
