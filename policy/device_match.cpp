// Device rules: which removable devices may carry keys (udev properties of the block device).
#include "policy/rule.h"

namespace keychaind::policy {

bool device_matches(const DeviceMatch& m, const DeviceFacts& d) {
    if (m.any) return true;
    // A field the rule gives never matches a property the device lacks (empty).
    const auto exact = [](const std::optional<std::string>& want, const std::string& have) {
        return !want || (!have.empty() && have == *want);
    };
    const auto any_case = [](const std::optional<std::string>& want, const std::string& have) {
        return !want || (!have.empty() && equal_ignoring_case(have, *want));
    };
    const bool serial = !m.serial || exact(m.serial, d.serial) || exact(m.serial, d.serial_short);
    return serial && any_case(m.vendor_id, d.vendor_id) && any_case(m.model_id, d.model_id) &&
           any_case(m.fs_uuid, d.fs_uuid) && exact(m.fs_label, d.fs_label);
}

}  // namespace keychaind::policy
