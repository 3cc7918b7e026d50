// Device filter: filesystem usage and type, USB or removable, the udev tag, [[devices.match]].
#include "media/device_filter.h"

#include <algorithm>

#include "core/log.h"

namespace keychaind::media {
namespace {

bool equal_ignoring_case(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               const auto lower = [](char c) {
                   return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
               };
               return lower(x) == lower(y);
           });
}

bool matches(const DeviceMatch& m, const BlockDevice& d) {
    if (!m.serial.empty() && d.property("ID_SERIAL") != m.serial) return false;
    if (!m.vendor_id.empty() && !equal_ignoring_case(d.property("ID_VENDOR_ID"), m.vendor_id))
        return false;
    if (!m.model_id.empty() && !equal_ignoring_case(d.property("ID_MODEL_ID"), m.model_id))
        return false;
    if (!m.fs_uuid.empty() && !equal_ignoring_case(d.property("ID_FS_UUID"), m.fs_uuid))
        return false;
    if (!m.fs_label.empty() && d.property("ID_FS_LABEL") != m.fs_label) return false;
    return true;
}

}  // namespace

std::string kernel_fs_type(std::string_view id_fs_type) {
    if (id_fs_type == "ntfs") return "ntfs3";
    const auto& known = supported_device_filesystems();
    return std::find(known.begin(), known.end(), id_fs_type) != known.end()
               ? std::string(id_fs_type)
               : "";
}

std::optional<std::string> DeviceFilter::refusal(const BlockDevice& d) const {
    if (!d.is_filesystem() || d.devnode.empty()) return std::string();
    const std::string type = d.property("ID_FS_TYPE");
    const std::string driver = kernel_fs_type(type);
    if (driver.empty() || std::find(cfg_.filesystems.begin(), cfg_.filesystems.end(), driver) ==
                              cfg_.filesystems.end())
        return "filesystem type \"" + log::escape(type, 32) + "\" is not in [devices] filesystems";
    if (!cfg_.allow_non_usb && d.property("ID_BUS") != "usb" && !d.removable)
        return "neither on USB nor removable (allow_non_usb = false)";
    if (cfg_.require_tag && d.tags.count("keychaind") == 0)
        return "udev did not tag it \"keychaind\" (require_tag = true)";
    if (!cfg_.match.empty() && std::none_of(cfg_.match.begin(), cfg_.match.end(),
                                            [&](const DeviceMatch& m) { return matches(m, d); }))
        return "matches no [[devices.match]] rule";
    return std::nullopt;
}

}  // namespace keychaind::media
