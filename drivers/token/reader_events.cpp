// ReaderEvents: a libudev monitor on usb_interface devices, filtered to CCID (class 11).
#include "token/reader_events.h"

#include <libudev.h>
#include <sys/eventfd.h>

#include <cstring>
#include <string_view>

#include "core/log.h"

namespace keychaind::token {

void ReaderEvents::UdevUnref::operator()(udev* u) const noexcept { udev_unref(u); }
void ReaderEvents::MonitorUnref::operator()(udev_monitor* m) const noexcept { udev_monitor_unref(m); }

ReaderEvents::ReaderEvents() {
    udev_.reset(udev_new());
    if (udev_) monitor_.reset(udev_monitor_new_from_netlink(udev_.get(), "udev"));
    if (monitor_ && (udev_monitor_filter_add_match_subsystem_devtype(monitor_.get(), "usb", "usb_interface") < 0 ||
                     udev_monitor_enable_receiving(monitor_.get()) < 0))
        monitor_.reset();
    if (!monitor_) {
        log::debug("smart card readers are not watched through udev; tokens are found by polling");
        idle_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    }
}

ReaderEvents::~ReaderEvents() = default;

int ReaderEvents::fd() const { return monitor_ ? udev_monitor_get_fd(monitor_.get()) : idle_.get(); }

bool ReaderEvents::drain() {
    if (!monitor_) return false;
    bool reader = false;
    // Bounded: a flood of USB events must not keep the loop here.
    for (int i = 0; i < 256; ++i) {
        udev_device* d = udev_monitor_receive_device(monitor_.get());
        if (d == nullptr) break;
        // INTERFACE=class/subclass/protocol in decimal, there on "remove" too (sysfs is gone by then).
        const char* iface = udev_device_get_property_value(d, "INTERFACE");
        if (iface != nullptr && std::string_view(iface).rfind("11/", 0) == 0) reader = true;
        udev_device_unref(d);
    }
    return reader;
}

}  // namespace keychaind::token
