// Peer matching: uid, gid and supplementary groups, user and group names, executable, unit.
#include <catch2/catch.hpp>

#include "policy_test_support.h"

using namespace keychaind::policy_test;
using Catch::Contains;
using Catch::StartsWith;

namespace {
// One rule allowing `lock` (a peer-only operation) to the given peer table.
std::shared_ptr<const Policy> lock_for(const std::string& peer_table) {
    return parse("[[rule]]\nname = \"r\"\npeer = " + peer_table + "\noperations = [\"lock\"]\n");
}
bool may_lock(const std::string& peer_table, const Peer& p) {
    return allows(lock_for(peer_table), p, Operation::Lock);
}
}  // namespace

TEST_CASE("uid matches the peer's uid, one or any of several", "[policy][peer]") {
    REQUIRE(may_lock("{ uid = 33 }", peer(33, 33)));
    REQUIRE_FALSE(may_lock("{ uid = 33 }", peer(34, 33)));
    REQUIRE_FALSE(may_lock("{ uid = 33 }", peer(0, 0)));  // root is not special to a rule
    REQUIRE(may_lock("{ uid = [0, 33] }", peer(0, 0)));
    REQUIRE(may_lock("{ uid = [0, 33] }", peer(33, 1)));
    REQUIRE_FALSE(may_lock("{ uid = [0, 33] }", peer(1, 33)));
}

TEST_CASE("gid matches the primary group or a supplementary one", "[policy][peer]") {
    REQUIRE(may_lock("{ gid = 110 }", peer(1000, 110)));
    REQUIRE(may_lock("{ gid = 110 }", peer(1000, 1000, {27, 110})));
    REQUIRE_FALSE(may_lock("{ gid = 110 }", peer(110, 1000, {27, 111})));  // a uid is not a gid
    REQUIRE(may_lock("{ gid = [5, 110] }", peer(1000, 1000, {5})));
}

TEST_CASE("user and group names are resolved at load", "[policy][peer]") {
    const uid_t www = uid_of("www-data");
    REQUIRE(may_lock("{ user = \"www-data\" }", peer(www, 9999)));
    REQUIRE_FALSE(may_lock("{ user = \"www-data\" }", peer(www + 1, 9999)));
    REQUIRE(may_lock("{ user = [\"root\", \"www-data\"] }", peer(0, 0)));
    REQUIRE(may_lock("{ group = \"root\" }", peer(1000, 1000, {0})));
    REQUIRE(may_lock("{ group = \"root\" }", peer(1000, 0)));
    REQUIRE_FALSE(may_lock("{ group = \"root\" }", peer(0, 1000, {1})));  // uid 0 is not group root
}

TEST_CASE("exe and unit match exactly", "[policy][peer]") {
    const Peer nginx = peer(33, 33, {}, "/usr/sbin/nginx", "nginx.service");
    REQUIRE(may_lock("{ exe = \"/usr/sbin/nginx\" }", nginx));
    REQUIRE_FALSE(may_lock("{ exe = \"/usr/sbin/nginx\" }", peer(33, 33, {}, "/usr/sbin/nginx2")));
    REQUIRE_FALSE(may_lock("{ exe = \"/usr/sbin/nginx\" }", peer(33, 33)));  // unknown exe
    REQUIRE(may_lock("{ exe = [\"/usr/bin/a\", \"/usr/sbin/nginx\"] }", nginx));
    REQUIRE(may_lock("{ unit = \"nginx.service\" }", nginx));
    REQUIRE_FALSE(may_lock("{ unit = \"nginx.service\" }",
                           peer(33, 33, {}, "/usr/sbin/nginx", "nginx2.service")));
    REQUIRE_FALSE(may_lock("{ unit = \"nginx.service\" }", peer(33, 33, {}, "/usr/sbin/nginx")));
}

TEST_CASE("every field a peer table gives must match", "[policy][peer]") {
    const std::string table = "{ uid = 33, exe = \"/usr/sbin/nginx\", unit = \"nginx.service\" }";
    REQUIRE(may_lock(table, peer(33, 33, {}, "/usr/sbin/nginx", "nginx.service")));
    REQUIRE_FALSE(may_lock(table, peer(34, 33, {}, "/usr/sbin/nginx", "nginx.service")));
    REQUIRE_FALSE(may_lock(table, peer(33, 33, {}, "/usr/bin/python3", "nginx.service")));
    REQUIRE_FALSE(may_lock(table, peer(33, 33, {}, "/usr/sbin/nginx", "")));
    REQUIRE(may_lock("{ user = \"root\", gid = 5 }", peer(0, 0, {5})));
    REQUIRE_FALSE(may_lock("{ user = \"root\", gid = 5 }", peer(0, 0, {6})));
}

TEST_CASE("peer = \"any\" matches every peer", "[policy][peer]") {
    REQUIRE(may_lock("\"any\"", peer(0, 0)));
    REQUIRE(may_lock("\"any\"", peer(65534, 65534)));
}

TEST_CASE("an unknown user name is a warning and never matches", "[policy][peer]") {
    const auto p = lock_for("{ user = \"keychaind-no-such-user\" }");
    REQUIRE(p->warnings().size() == 1);
    REQUIRE_THAT(p->warnings()[0],
                 StartsWith(at_line(3)) &&
                     Contains("rule \"r\": no user \"keychaind-no-such-user\" on this system; "
                              "the rule never matches"));
    // uid 0 is what a failed lookup could have left behind: it must not match.
    for (const uid_t uid : {0u, 33u, 65534u})
        REQUIRE_FALSE(allows(p, peer(uid, uid), Operation::Lock));
    REQUIRE_FALSE(Policy::view_for(p, peer(0, 0)).may_ever(Operation::Lock));
}

TEST_CASE("an unknown name beside known ones leaves the known ones working", "[policy][peer]") {
    const auto p = lock_for(
        "{ user = [\"keychaind-no-such-user\", \"root\"], group = \"keychaind-no-such-group\" }");
    REQUIRE(p->warnings().size() == 2);
    REQUIRE_THAT(p->warnings()[0], Contains("no user \"keychaind-no-such-user\"") &&
                                       Contains("that name never matches"));
    REQUIRE_THAT(p->warnings()[1], Contains("no group \"keychaind-no-such-group\"") &&
                                       Contains("the rule never matches"));
    REQUIRE_FALSE(allows(p, peer(0, 0), Operation::Lock));  // the group part never matches

    const auto q = lock_for("{ user = [\"keychaind-no-such-user\", \"root\"] }");
    REQUIRE(allows(q, peer(0, 0), Operation::Lock));
    REQUIRE_FALSE(allows(q, peer(1, 1), Operation::Lock));
}

TEST_CASE("an exe that is a symlink is a warning: the kernel shows the target", "[policy][peer]") {
    const auto p = lock_for("{ exe = \"/proc/self/exe\" }");
    REQUIRE(p->warnings().size() == 1);
    REQUIRE_THAT(p->warnings()[0], Contains("resolves to"));
}
