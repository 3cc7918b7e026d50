// Integration: the libudev DeviceMonitor against real systemd-udevd, and the mount table parser.
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <catch2/catch.hpp>
#include <functional>
#include <optional>

#include "media/device_filter.h"
#include "media/mount_table.h"
#include "media/udev_watcher.h"
#include "media_fixtures.h"

using namespace keychaind;
using namespace keychaind::test;
using namespace keychaind::media;
using Clock = std::chrono::steady_clock;

namespace {

// Events for `devnum` until `pred` holds for one (or the timeout passes).
std::optional<DeviceEvent> next_event(UdevDeviceMonitor& m, dev_t devnum,
                                      std::chrono::milliseconds timeout,
                                      const std::function<bool(const DeviceEvent&)>& pred) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        pollfd p{m.fd(), POLLIN, 0};
        poll(&p, 1, 100);
        for (DeviceEvent& ev : m.receive())
            if (ev.device.devnum == devnum && pred(ev)) return std::move(ev);
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE(
    "losetup -P gives a udev event with ID_FS_USAGE=filesystem and a DISKSEQ, and detach takes it "
    "away",
    "[media][udev]") {
    require_udevd();
    TempDir dir("keychaind-media");
    const std::string root = dir.file("root");
    mkdir(root.c_str(), 0755);
    write_file(root + "/a.4DKeyChain", "{}");
    const std::string uuid = random_uuid();
    make_ext4_image(dir.file("a.img"), root, uuid, 8);

    UdevDeviceMonitor monitor;
    LoopDevice loop(dir.file("a.img"));
    const auto added = next_event(monitor, loop.devnum(), std::chrono::seconds(10),
                                  [](const DeviceEvent& ev) { return ev.device.is_filesystem(); });
    REQUIRE(added);
    // Loop nodes exist from boot: attaching is a "change" of /dev/loopN, not an "add".
    CHECK(added->action != DeviceAction::Removed);
    CHECK(added->device.devnode == loop.path());
    CHECK(added->device.property("ID_FS_TYPE") == "ext4");
    CHECK(added->device.property("ID_FS_UUID") == uuid);
    CHECK(added->device.diskseq != 0);
    CHECK_FALSE(added->device.removable);

    // Enumeration finds the same device, with the same medium.
    bool listed = false;
    for (const BlockDevice& d : monitor.enumerate())
        if (d.devnum == loop.devnum()) {
            listed = true;
            CHECK(d.diskseq == added->device.diskseq);
            CHECK(d.is_filesystem());
        }
    CHECK(listed);

    loop.detach();
    const auto gone =
        next_event(monitor, loop.devnum(), std::chrono::seconds(10), [](const DeviceEvent& ev) {
            return ev.action == DeviceAction::Removed || !ev.device.is_filesystem();
        });
    CHECK(gone);
}

TEST_CASE("the device filter: non-USB refused by default, match rules, filesystem allowlist",
          "[media]") {
    BlockDevice d;
    d.devnode = "/dev/loop3";
    d.properties = {{"ID_FS_USAGE", "filesystem"}, {"ID_FS_TYPE", "ext4"}, {"ID_FS_UUID", "AB-CD"}};
    DevicesConfig cfg;
    CHECK(DeviceFilter(cfg).refusal(d).value_or("") ==
          "neither on USB nor removable (allow_non_usb = false)");
    d.properties["ID_BUS"] = "usb";
    CHECK_FALSE(DeviceFilter(cfg).refusal(d));
    cfg.match.push_back(DeviceMatch{"", "", "", "ab-cd", ""});
    CHECK_FALSE(DeviceFilter(cfg).refusal(d));  // fs UUIDs compare without case
    cfg.match[0].fs_uuid = "other";
    CHECK(DeviceFilter(cfg).refusal(d).value_or("") == "matches no [[devices.match]] rule");
    cfg.match.clear();
    cfg.require_tag = true;
    CHECK(DeviceFilter(cfg).refusal(d));
    d.tags.insert("keychaind");
    CHECK_FALSE(DeviceFilter(cfg).refusal(d));
    d.properties["ID_FS_TYPE"] = "squashfs";
    CHECK(DeviceFilter(cfg).refusal(d).value_or("").find("not in [devices] filesystems") !=
          std::string::npos);
    d.properties["ID_FS_USAGE"] = "raid";
    CHECK(DeviceFilter(cfg).refusal(d).value_or("x").empty());  // not a filesystem: refused quietly
    CHECK(kernel_fs_type("ntfs") == "ntfs3");
}

TEST_CASE("mountinfo lines are parsed with their escapes", "[media]") {
    const std::string text =
        "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "40 26 7:3 / /media/my\\040stick rw shared:5 master:1 - vfat /dev/loop3 rw\n"
        "41 26 7:4 /sub /mnt/bind rw - ext4 /dev/loop4 rw\n"
        "garbage\n";
    const auto entries = parse_mountinfo(text);
    REQUIRE(entries.size() == 3);
    CHECK(entries[1].dev == makedev(7, 3));
    CHECK(entries[1].mount_point == "/media/my stick");
    CHECK(entries[1].fs_type == "vfat");
    CHECK(entries[2].root == "/sub");
}
