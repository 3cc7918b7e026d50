// Device rules: which removable devices may carry keys, and which are forced tethered.
#include <catch2/catch.hpp>

#include "policy_test_support.h"

using namespace keychaind::policy_test;
using keychaind::policy::DeviceFacts;

namespace {
DeviceFacts stick(std::string serial = "SanDisk_Cruzer_Blade_4C530001230815109212-0:0") {
    DeviceFacts d;
    d.vendor_id = "0781";
    d.model_id = "5567";
    d.serial = std::move(serial);
    d.serial_short = "4C530001230815109212";
    d.fs_uuid = "6A1B-2C3D";
    d.fs_label = "KEYS";
    return d;
}
constexpr const char* kDevices = R"(
[[device]]
name = "ops sticks"
match = { vendor_id = "0781", model_id = "5567", fs_label = "KEYS" }
tethered = true

[[device]]
name = "this one"
match = { serial = "4C530001230815109212" }

[[device]]
name = "by uuid"
match = { fs_uuid = "abcd-ef01" }
)";
}  // namespace

TEST_CASE("the first matching device rule allows, with its tethered flag", "[policy][devices]") {
    const auto p = parse(kDevices);
    const auto ops = p->device_permit(stick());
    REQUIRE(ops.allowed);
    REQUIRE(ops.force_tethered);
    REQUIRE(ops.rule == "ops sticks");

    DeviceFacts relabelled = stick();
    relabelled.fs_label = "OTHER";
    const auto serial = p->device_permit(relabelled);  // ID_SERIAL_SHORT matches the second rule
    REQUIRE(serial.allowed);
    REQUIRE_FALSE(serial.force_tethered);
    REQUIRE(serial.rule == "this one");

    DeviceFacts upper = stick("x");
    upper.serial_short = "y";
    upper.vendor_id = "0781";
    upper.model_id = "5567";
    upper.fs_label = "keys";      // fs_label is exact
    upper.fs_uuid = "ABCD-EF01";  // fs_uuid is any case
    REQUIRE(p->device_permit(upper).rule == "by uuid");
}

TEST_CASE("a device no rule matches is refused by default deny", "[policy][devices]") {
    const auto p = parse(kDevices);
    DeviceFacts other;
    other.vendor_id = "090c";
    other.model_id = "1000";
    other.serial = "Samsung_Flash_Drive_0374";
    other.fs_uuid = "1111-2222";
    const auto d = p->device_permit(other);
    REQUIRE_FALSE(d.allowed);
    REQUIRE_FALSE(d.force_tethered);
    REQUIRE(d.rule == "default deny");
    // A field the rule gives never matches a property the device lacks.
    DeviceFacts bare;
    REQUIRE_FALSE(p->device_permit(bare).allowed);
}

TEST_CASE("a policy without device rules lets no device carry keys", "[policy][devices]") {
    const auto p =
        parse("[[rule]]\nname = \"r\"\npeer = \"any\"\noperations = [\"list\"]\nkeys = \"any\"\n");
    REQUIRE(p->device_rule_count() == 0);
    REQUIRE_FALSE(p->device_permit(stick()).allowed);
}

TEST_CASE("match = \"any\" takes every device", "[policy][devices]") {
    const auto p = parse("[[device]]\nname = \"all\"\nmatch = \"any\"\n");
    REQUIRE(p->device_permit(stick()).allowed);
    REQUIRE(p->device_permit(DeviceFacts{}).allowed);
    REQUIRE_FALSE(p->device_permit(DeviceFacts{}).force_tethered);
}
