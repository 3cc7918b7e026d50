// UdevDeviceMonitor: the DeviceMonitor on libudev (block subsystem, udev-processed events only).
#pragma once

#include <memory>

#include "media/device_monitor.h"

struct udev;
struct udev_monitor;

namespace keychaind::media {

class UdevDeviceMonitor final : public DeviceMonitor {
public:
    // Connects to udev's netlink group and starts receiving. Throws std::runtime_error.
    UdevDeviceMonitor();
    ~UdevDeviceMonitor() override;
    UdevDeviceMonitor(const UdevDeviceMonitor&) = delete;
    UdevDeviceMonitor& operator=(const UdevDeviceMonitor&) = delete;

    int fd() const override;
    std::vector<DeviceEvent> receive() override;
    std::vector<BlockDevice> enumerate() override;
    bool take_events_lost() override;

private:
    struct UdevUnref {
        void operator()(udev* u) const noexcept;
    };
    struct MonitorUnref {
        void operator()(udev_monitor* m) const noexcept;
    };
    std::unique_ptr<udev, UdevUnref> udev_;
    std::unique_ptr<udev_monitor, MonitorUnref> monitor_;
    bool events_lost_ = false;
};

}  // namespace keychaind::media
