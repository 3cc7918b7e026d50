// libudev monitor and enumeration of block devices, turned into BlockDevice values.
#include "media/udev_watcher.h"

#include <libudev.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "core/log.h"

namespace keychaind::media {
namespace {

// A burst of events (a hub with several sticks) must not overflow the socket: events lost there
// are noticed (ENOBUFS) and answered with a rescan, but a rescan costs more than a buffer.
constexpr int kReceiveBufferBytes = 4 * 1024 * 1024;
// Bounds one receive() call; the descriptor stays readable and the loop comes back for more.
constexpr size_t kMaxEventsPerCall = 256;
// A device with more properties than this is not something udev made.
constexpr size_t kMaxProperties = 512;

struct DeviceUnref {
    void operator()(udev_device* d) const noexcept { udev_device_unref(d); }
};
using DevicePtr = std::unique_ptr<udev_device, DeviceUnref>;
struct EnumerateUnref {
    void operator()(udev_enumerate* e) const noexcept { udev_enumerate_unref(e); }
};

std::string str_or_empty(const char* s) { return s != nullptr ? s : ""; }

uint64_t parse_u64(const std::string& s) {
    uint64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size() ? v : 0;
}

BlockDevice describe(udev_device* d) {
    BlockDevice b;
    b.devnum = udev_device_get_devnum(d);
    b.devnode = str_or_empty(udev_device_get_devnode(d));
    b.syspath = str_or_empty(udev_device_get_syspath(d));
    size_t n = 0;
    for (udev_list_entry* e = udev_device_get_properties_list_entry(d);
         e != nullptr && n < kMaxProperties; e = udev_list_entry_get_next(e), ++n)
        b.properties.emplace(str_or_empty(udev_list_entry_get_name(e)),
                             str_or_empty(udev_list_entry_get_value(e)));
    for (udev_list_entry* e = udev_device_get_current_tags_list_entry(d); e != nullptr;
         e = udev_list_entry_get_next(e))
        b.tags.emplace(str_or_empty(udev_list_entry_get_name(e)));

    // A partition's medium is its disk's: DISKSEQ and "removable" live there.
    udev_device* disk = d;
    if (str_or_empty(udev_device_get_devtype(d)) == "partition")
        disk = udev_device_get_parent_with_subsystem_devtype(d, "block", "disk");  // owned by d
    b.diskseq = parse_u64(b.property("DISKSEQ"));
    if (disk != nullptr) {
        if (b.diskseq == 0)
            b.diskseq = parse_u64(str_or_empty(udev_device_get_property_value(disk, "DISKSEQ")));
        b.removable = str_or_empty(udev_device_get_sysattr_value(disk, "removable")) == "1";
    }
    return b;
}

DeviceAction action_of(const char* action) {
    const std::string a = str_or_empty(action);
    if (a == "add") return DeviceAction::Added;
    if (a == "remove") return DeviceAction::Removed;
    return DeviceAction::Changed;  // change, move, online, offline: the properties say the rest
}

}  // namespace

void UdevDeviceMonitor::UdevUnref::operator()(udev* u) const noexcept { udev_unref(u); }
void UdevDeviceMonitor::MonitorUnref::operator()(udev_monitor* m) const noexcept {
    udev_monitor_unref(m);
}

UdevDeviceMonitor::UdevDeviceMonitor() : udev_(udev_new()) {
    if (!udev_) throw std::runtime_error(std::string("udev_new: ") + std::strerror(errno));
    // "udev", not "kernel": only events udevd has processed (ID_FS_*, tags, ID_SERIAL are there),
    // and only after it has finished with the device, so the device node exists.
    monitor_.reset(udev_monitor_new_from_netlink(udev_.get(), "udev"));
    if (!monitor_) throw std::runtime_error(std::string("udev monitor: ") + std::strerror(errno));
    if (udev_monitor_filter_add_match_subsystem_devtype(monitor_.get(), "block", nullptr) < 0)
        throw std::runtime_error("udev monitor: cannot filter on the block subsystem");
    // Not a tag filter: the event that says a device is gone no longer carries the tag.
    udev_monitor_set_receive_buffer_size(monitor_.get(), kReceiveBufferBytes);  // best effort
    if (int r = udev_monitor_enable_receiving(monitor_.get()); r < 0)
        throw std::runtime_error(std::string("udev monitor: ") + std::strerror(-r));
}

UdevDeviceMonitor::~UdevDeviceMonitor() = default;

int UdevDeviceMonitor::fd() const { return udev_monitor_get_fd(monitor_.get()); }

bool UdevDeviceMonitor::take_events_lost() { return std::exchange(events_lost_, false); }

std::vector<DeviceEvent> UdevDeviceMonitor::receive() {
    std::vector<DeviceEvent> events;
    while (events.size() < kMaxEventsPerCall) {
        errno = 0;
        DevicePtr d(udev_monitor_receive_device(monitor_.get()));
        if (!d) {
            if (errno == ENOBUFS) {
                events_lost_ = true;
                continue;
            }
            break;  // EAGAIN: nothing more now
        }
        // libudev has already dropped messages whose sender is not uid 0 (SCM_CREDENTIALS) and,
        // on this group, any without udevd's header; and only CAP_NET_ADMIN may send to a uevent
        // multicast group at all. A device not marked initialized did not come through udevd.
        if (udev_device_get_is_initialized(d.get()) <= 0) {
            log::warning("udev monitor: dropped an event that udevd did not process");
            continue;
        }
        events.push_back({action_of(udev_device_get_action(d.get())), describe(d.get())});
    }
    return events;
}

std::vector<BlockDevice> UdevDeviceMonitor::enumerate() {
    // A context of its own: libudev objects are not thread-safe and receive() runs elsewhere.
    std::unique_ptr<udev, UdevUnref> u(udev_new());
    if (!u) throw std::runtime_error(std::string("udev_new: ") + std::strerror(errno));
    std::unique_ptr<udev_enumerate, EnumerateUnref> e(udev_enumerate_new(u.get()));
    if (!e) throw std::runtime_error(std::string("udev enumerate: ") + std::strerror(errno));
    udev_enumerate_add_match_subsystem(e.get(), "block");
    udev_enumerate_add_match_is_initialized(e.get());
    if (int r = udev_enumerate_scan_devices(e.get()); r < 0)
        throw std::runtime_error(std::string("udev enumerate: ") + std::strerror(-r));
    std::vector<BlockDevice> devices;
    for (udev_list_entry* l = udev_enumerate_get_list_entry(e.get()); l != nullptr;
         l = udev_list_entry_get_next(l)) {
        DevicePtr d(udev_device_new_from_syspath(u.get(), udev_list_entry_get_name(l)));
        if (!d || udev_device_get_devnode(d.get()) == nullptr) continue;
        devices.push_back(describe(d.get()));
    }
    return devices;
}

std::string BlockDevice::property(std::string_view name) const {
    const auto it = properties.find(name);
    return it == properties.end() ? std::string() : it->second;
}

std::string BlockDevice::text() const {
    return log::escape(devnode.empty() ? syspath : devnode) + " (" + std::to_string(major(devnum)) +
           ":" + std::to_string(minor(devnum)) + ", diskseq " + std::to_string(diskseq) + ")";
}

}  // namespace keychaind::media
