// The built-in policy: root and the daemon's user do everything, other peers every non-admin
// operation on every key, every device may carry keys.
#include <catch2/catch.hpp>

#include "policy_test_support.h"

using namespace keychaind::policy_test;
using keychaind::policy::DeviceFacts;
using keychaind::policy::is_admin;
using keychaind::policy::kOperationCount;
using keychaind::policy::operation_name;

TEST_CASE("the built-in policy gives admin to root and the daemon's user only",
          "[policy][builtin]") {
    const auto p = Policy::builtin(990);
    REQUIRE(p->source() == "built-in");
    REQUIRE(p->warnings().empty());
    const KeyFacts k = key(kIdA, "anything", {"provided:uid=0"});
    for (size_t i = 0; i < kOperationCount; ++i) {
        const auto op = static_cast<Operation>(i);
        INFO(operation_name(op));
        REQUIRE(allows(p, peer(0, 0), op, k));
        REQUIRE(allows(p, peer(990, 990), op, k));
        REQUIRE(allows(p, peer(1000, 1000), op, k) == !is_admin(op));
        REQUIRE(Policy::view_for(p, peer(1000, 1000)).may_ever(op) == !is_admin(op));
    }
    // Group membership does not make an admin.
    REQUIRE_FALSE(allows(p, peer(1000, 0, {0, 990}), Operation::Lock));
}

TEST_CASE("the built-in policy for a root daemon still refuses admin to others",
          "[policy][builtin]") {
    const auto p = Policy::builtin(0);
    REQUIRE(allows(p, peer(0, 0), Operation::Provide));
    REQUIRE_FALSE(allows(p, peer(1, 1), Operation::Provide));
    REQUIRE(allows(p, peer(1, 1), Operation::Sign, key(kIdA, "x")));
}

TEST_CASE("the built-in policy lets every device carry keys, untethered", "[policy][builtin]") {
    const auto d = Policy::builtin(990)->device_permit(DeviceFacts{});
    REQUIRE(d.allowed);
    REQUIRE_FALSE(d.force_tethered);
}
