// Decisions: operations (and their shorthands), first match, default deny, may_ever, the trace.
#include <catch2/catch.hpp>

#include "policy_test_support.h"

using namespace keychaind::policy_test;
using Catch::Contains;
using keychaind::policy::is_admin;
using keychaind::policy::is_key_operation;
using keychaind::policy::kOperationCount;
using keychaind::policy::operation_from_name;
using keychaind::policy::operation_name;

namespace {
Operation op(size_t i) { return static_cast<Operation>(i); }

// nginx (uid 33) signs with web keys; a deny on the web-old key comes first; uid 0 administers.
constexpr const char* kServer = R"(
[[rule]]
name = "no old web key"
peer = "any"
operations = ["sign", "public", "forget"]
keys = [{ label = "web-old" }]
action = "deny"

[[rule]]
name = "nginx"
peer = { uid = 33 }
operations = ["sign", "public", "list", "wait", "subscribe"]
keys = [{ label = "web-*" }]
rate = 2000

[[rule]]
name = "db"
peer = { uid = 5432 }
operations = ["unwrap", "gen-datakey"]
keys = [{ label = "db-kek" }]

[[rule]]
name = "admins"
peer = { uid = 0 }
operations = ["admin"]
keys = "any"
)";
}  // namespace

TEST_CASE("operation names round-trip and sort into admin and key operations",
          "[policy][operations]") {
    for (size_t i = 0; i < kOperationCount; ++i)
        REQUIRE(operation_from_name(operation_name(op(i))) == op(i));
    REQUIRE(operation_name(Operation::GenDataKey) == "gen-datakey");
    REQUIRE_FALSE(
        operation_from_name("admin").has_value());  // a shorthand in files, not an operation
    REQUIRE_FALSE(operation_from_name("Sign").has_value());
    size_t admin = 0, key = 0;
    for (size_t i = 0; i < kOperationCount; ++i) {
        admin += is_admin(op(i));
        key += is_key_operation(op(i));
    }
    REQUIRE(admin == 5);
    REQUIRE(key == 11);
    REQUIRE(is_key_operation(Operation::Forget));
    REQUIRE_FALSE(is_key_operation(Operation::Lock));
    REQUIRE_FALSE(is_admin(Operation::List));
}

TEST_CASE("the admin shorthand grants exactly the admin operations, all grants every one",
          "[policy][operations]") {
    const auto p = parse(
        "[[rule]]\nname = \"a\"\npeer = { uid = 0 }\noperations = [\"admin\"]\nkeys = \"any\"\n"
        "[[rule]]\nname = \"b\"\npeer = { uid = 1 }\noperations = [\"all\"]\nkeys = \"any\"\n");
    const KeyFacts k = key(kIdA, "x");
    for (size_t i = 0; i < kOperationCount; ++i) {
        INFO(operation_name(op(i)));
        REQUIRE(allows(p, peer(0, 0), op(i), k) == is_admin(op(i)));
        REQUIRE(allows(p, peer(1, 1), op(i), k));
        REQUIRE_FALSE(allows(p, peer(2, 2), op(i), k));
    }
}

TEST_CASE("only the operations a rule lists are allowed", "[policy][operations]") {
    const auto p = parse(kServer);
    const KeyFacts web = key(kIdA, "web-1");
    const Peer nginx = peer(33, 33);
    REQUIRE(allows(p, nginx, Operation::Sign, web));
    REQUIRE(allows(p, nginx, Operation::Public, web));
    REQUIRE_FALSE(allows(p, nginx, Operation::Decrypt, web));
    REQUIRE_FALSE(allows(p, nginx, Operation::Unwrap, web));
    REQUIRE_FALSE(allows(p, nginx, Operation::Forget, web));
    REQUIRE_FALSE(allows(p, nginx, Operation::Lock));
}

TEST_CASE("the first matching rule decides: a deny before an allow wins", "[policy][decision]") {
    const auto p = parse(kServer);
    const auto view = Policy::view_for(p, peer(33, 33));
    const KeyFacts old = key(kIdA, "web-old");
    const auto d = view.decide(Operation::Sign, &old);
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.rule == "no old web key");
    REQUIRE(d.rule_index == 0u);
    REQUIRE(d.rate == 0);
    // Root's admin rule comes after the deny too.
    REQUIRE_FALSE(allows(p, peer(0, 0), Operation::Forget, old));
    REQUIRE(allows(p, peer(0, 0), Operation::Forget, key(kIdA, "web-1")));

    const KeyFacts web = key(kIdA, "web-1");
    const auto ok = view.decide(Operation::Sign, &web);
    REQUIRE(ok.allowed);
    REQUIRE(ok.rule == "nginx");
    REQUIRE(ok.rule_index == 1u);
    REQUIRE(ok.rate == 2000);
}

TEST_CASE("an allow rule before a deny rule wins as well", "[policy][decision]") {
    const auto p = parse(R"(
[[rule]]
name = "web"
peer = "any"
operations = ["sign"]
keys = [{ label = "web-*" }]
[[rule]]
name = "nothing else"
peer = "any"
operations = ["all"]
keys = "any"
action = "deny"
)");
    REQUIRE(allows(p, peer(5, 5), Operation::Sign, key(kIdA, "web-1")));
    const auto d = Policy::view_for(p, peer(5, 5)).decide(Operation::Sign, nullptr);
    REQUIRE_FALSE(d.allowed);
    const KeyFacts db = key(kIdA, "db");
    const auto denied = Policy::view_for(p, peer(5, 5)).decide(Operation::Sign, &db);
    REQUIRE_FALSE(denied.allowed);
    REQUIRE(denied.rule == "nothing else");
}

TEST_CASE("no matching rule means deny by default deny", "[policy][decision]") {
    const auto p = parse(kServer);
    const KeyFacts web = key(kIdA, "web-1");
    for (const Peer& who : {peer(34, 34), peer(5432, 5432), peer(1000, 33, {33})}) {
        const auto d = Policy::view_for(p, who).decide(Operation::Sign, &web);
        REQUIRE_FALSE(d.allowed);
        REQUIRE(d.rule == "default deny");
        REQUIRE_FALSE(d.rule_index.has_value());
    }
    // The right peer and operation with a key no selector picks.
    const KeyFacts other = key(kIdA, "mail-1");
    REQUIRE(Policy::view_for(p, peer(33, 33)).decide(Operation::Sign, &other).rule ==
            "default deny");
    REQUIRE(allows(p, peer(5432, 5432), Operation::Unwrap, key(kIdB, "db-kek")));
    REQUIRE_FALSE(allows(p, peer(5432, 5432), Operation::Unwrap, key(kIdB, "db-kek2")));
}

TEST_CASE("may_ever: whether any rule could allow the operation to this peer",
          "[policy][decision]") {
    const auto p = parse(kServer);
    const auto nginx = Policy::view_for(p, peer(33, 33));
    REQUIRE(nginx.may_ever(Operation::Sign));
    REQUIRE(nginx.may_ever(Operation::Subscribe));
    REQUIRE_FALSE(nginx.may_ever(Operation::Decrypt));
    REQUIRE_FALSE(nginx.may_ever(Operation::Lock));
    const auto root = Policy::view_for(p, peer(0, 0));
    REQUIRE(root.may_ever(Operation::Forget));
    REQUIRE(root.may_ever(Operation::Discover));
    REQUIRE_FALSE(root.may_ever(Operation::Sign));
    const auto stranger = Policy::view_for(p, peer(1000, 1000));
    for (size_t i = 0; i < kOperationCount; ++i) REQUIRE_FALSE(stranger.may_ever(op(i)));
}

TEST_CASE("may_ever is false behind a deny that covers every key", "[policy][decision]") {
    const auto p = parse(R"(
[[rule]]
name = "no locking by uid 7"
peer = { uid = 7 }
operations = ["lock", "sign"]
keys = "any"
action = "deny"
[[rule]]
name = "no decrypting old keys"
peer = "any"
operations = ["decrypt"]
keys = [{ label = "old-*" }]
action = "deny"
[[rule]]
name = "everyone"
peer = "any"
operations = ["lock", "sign", "decrypt"]
keys = "any"
)");
    const auto seven = Policy::view_for(p, peer(7, 7));
    REQUIRE_FALSE(seven.may_ever(Operation::Lock));
    REQUIRE_FALSE(seven.may_ever(Operation::Sign));
    REQUIRE(seven.may_ever(Operation::Decrypt));  // a key not named old-* may be decrypted
    const auto eight = Policy::view_for(p, peer(8, 8));
    REQUIRE(eight.may_ever(Operation::Lock));
    REQUIRE(eight.may_ever(Operation::Sign));
}

TEST_CASE("a default-constructed view denies everything", "[policy][decision]") {
    const Policy::PeerView none;
    const KeyFacts k = key(kIdA, "x");
    REQUIRE_FALSE(none.decide(Operation::Sign, &k).allowed);
    REQUIRE_FALSE(none.may_ever(Operation::Sign));
}

TEST_CASE("the trace explains each rule considered, in order", "[policy][trace]") {
    const auto p = parse(R"(
[[rule]]
name = "db"
peer = { uid = 5432 }
operations = ["unwrap"]
keys = "any"
[[rule]]
name = "nginx"
peer = { user = "www-data" }
operations = ["sign"]
keys = [{ label = "web-*" }]
[[rule]]
name = "after"
peer = "any"
operations = ["sign"]
keys = "any"
)");
    const uid_t www = uid_of("www-data");
    const auto view = Policy::view_for(p, peer(www, www));
    const KeyFacts web = key(kIdA, "web-1");
    const auto d = view.decide(Operation::Sign, &web, true);
    REQUIRE(d.allowed);
    REQUIRE(d.trace.size() == 3);
    REQUIRE(d.trace[0] ==
            "rule \"db\": peer does not match (uid " + std::to_string(www) + " is not 5432)");
    REQUIRE(d.trace[1] ==
            "rule \"nginx\": peer matches (user www-data = uid " + std::to_string(www) + ")");
    REQUIRE(d.trace[2] ==
            "rule \"nginx\": operation sign allowed, key label \"web-1\" matches label \"web-*\" → "
            "allow");
    // Without a trace the same decision, and no lines.
    const auto quiet = view.decide(Operation::Sign, &web);
    REQUIRE(quiet.allowed);
    REQUIRE(quiet.rule == "nginx");
    REQUIRE(quiet.trace.empty());

    const KeyFacts db = key(kIdA, "db-kek", {"file:/etc/keychaind/keys/db.4DKeyChain"});
    const auto next = view.decide(Operation::Sign, &db, true);
    REQUIRE(next.rule == "after");
    REQUIRE_THAT(next.trace[2], Contains("but key id " + std::string(kIdA) +
                                         " label \"db-kek\" matches none of: "
                                         "label \"web-*\" → next rule"));
    REQUIRE_THAT(next.trace[4],
                 Contains("rule \"after\": operation sign allowed, any key → allow"));

    const auto other_op = view.decide(Operation::Lock, nullptr, true);
    REQUIRE_FALSE(other_op.allowed);
    REQUIRE(other_op.trace[2] == "rule \"nginx\": operation lock is not one of sign");
}

TEST_CASE("trace lines quote hostile labels", "[policy][trace]") {
    const auto p = parse(
        "[[rule]]\nname = \"r\"\npeer = \"any\"\noperations = [\"sign\"]\nkeys = [{ label = \"*\" "
        "}]\n");
    const KeyFacts k = key(kIdA, "a\"b\nc\x1b[31m");
    const auto d = Policy::view_for(p, peer(1, 1)).decide(Operation::Sign, &k, true);
    REQUIRE(d.allowed);
    REQUIRE_THAT(d.trace.back(), Contains("label \"a\\\"b\\x0ac\\x1b[31m\""));
}
