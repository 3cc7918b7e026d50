// Key selectors: id, label glob, source kind, device serial and filesystem UUID, token URI.
#include <catch2/catch.hpp>

#include "policy_test_support.h"

using namespace keychaind::policy_test;

namespace {
// One rule allowing `sign` to every peer on the keys the selectors pick.
std::shared_ptr<const Policy> sign_on(const std::string& keys) {
    return parse("[[rule]]\nname = \"r\"\npeer = \"any\"\noperations = [\"sign\"]\nkeys = " + keys +
                 "\n");
}
bool may_sign(const std::string& keys, const KeyFacts& k) {
    return allows(sign_on(keys), peer(33, 33), Operation::Sign, k);
}

const std::string kDeviceSource = "device:SanDisk_Cruzer_4C53000123-0:0/6A1B-2C3D/keys.4DKeyChain";
const std::string kTokenSource =
    "token:pkcs11:token=web;serial=111ed75496bd15ec;object=tls-ec;id=%01%02;type=private";
}  // namespace

TEST_CASE("an id selector matches that key id in any case", "[policy][keys]") {
    REQUIRE(may_sign(R"([{ id = "0123456789ABCDEF0123456789abcdef" }])", key(kIdA, "x")));
    REQUIRE_FALSE(may_sign(R"([{ id = "0123456789abcdef0123456789abcdef" }])", key(kIdB, "x")));
    const std::string long_id(64, 'c');
    REQUIRE(may_sign("[{ id = \"" + long_id + "\" }]", key(long_id, "tls")));
    REQUIRE_FALSE(may_sign("[{ id = \"" + long_id + "\" }]", key(std::string(64, 'd'), "tls")));
}

TEST_CASE("a label selector is a case-sensitive glob", "[policy][keys]") {
    REQUIRE(may_sign(R"([{ label = "web-*" }])", key(kIdA, "web-1")));
    REQUIRE(may_sign(R"([{ label = "web-*" }])", key(kIdA, "web-")));
    REQUIRE_FALSE(may_sign(R"([{ label = "web-*" }])", key(kIdA, "Web-1")));
    REQUIRE_FALSE(may_sign(R"([{ label = "web-*" }])", key(kIdA, "db")));
    REQUIRE(may_sign(R"([{ label = "db" }])", key(kIdA, "db")));
    REQUIRE_FALSE(may_sign(R"([{ label = "db" }])", key(kIdA, "db2")));
    REQUIRE(may_sign(R"([{ label = "web-?" }])", key(kIdA, "web-1")));
    REQUIRE_FALSE(may_sign(R"([{ label = "web-?" }])", key(kIdA, "web-12")));
    REQUIRE(may_sign(R"([{ label = "*" }])", key(kIdA, "a/b")));  // no FNM_PATHNAME
    // A NUL in a label would end the string fnmatch sees.
    REQUIRE_FALSE(may_sign(R"([{ label = "db" }])", key(kIdA, std::string("db\0evil", 7))));
}

TEST_CASE("a key matches when any selector matches, and a selector when all its fields do",
          "[policy][keys]") {
    const std::string keys =
        R"([{ label = "web-*", source = "file" }, { id = "fedcba9876543210fedcba9876543210" }])";
    REQUIRE(may_sign(keys, key(kIdA, "web-1", {"file:/etc/keychaind/keys/web.4DKeyChain"})));
    REQUIRE_FALSE(may_sign(keys, key(kIdA, "web-1", {"provided:uid=0"})));
    REQUIRE(may_sign(keys, key(kIdB, "anything", {"provided:uid=0"})));
    REQUIRE_FALSE(may_sign(keys, key(kIdA, "db", {"file:/x.4DKeyChain"})));
    REQUIRE(may_sign("\"any\"", key(kIdA, "whatever")));
}

TEST_CASE("a source selector matches when any of the key's sources has that kind",
          "[policy][keys]") {
    const KeyFacts k = key(kIdA, "db", {"file:/etc/keychaind/keys/db.4DKeyChain", kDeviceSource});
    REQUIRE(may_sign(R"([{ source = "file" }])", k));
    REQUIRE(may_sign(R"([{ source = "device" }])", k));
    REQUIRE_FALSE(may_sign(R"([{ source = "token" }])", k));
    REQUIRE_FALSE(may_sign(R"([{ source = "provided" }])", k));
    REQUIRE(may_sign(R"([{ source = "identity" }])", key(kIdA, "www", {"identity:www"})));
    REQUIRE(may_sign(R"([{ source = "provided" }])", key(kIdA, "p", {"provided:uid=0"})));
    REQUIRE(may_sign(R"([{ source = "token" }])", key(kIdA, "t", {kTokenSource})));
    REQUIRE_FALSE(may_sign(R"([{ source = "file" }])", key(kIdA, "none")));
    // A kind is the text before the first colon, not a prefix of it.
    REQUIRE_FALSE(may_sign(R"([{ source = "file" }])", key(kIdA, "f", {"filesystem:/x"})));
}

TEST_CASE("a device selector reads serial and filesystem UUID from the right of the source",
          "[policy][keys]") {
    const KeyFacts k = key(kIdA, "db", {kDeviceSource});
    REQUIRE(may_sign(R"([{ device = { serial = "SanDisk_Cruzer_4C53000123-0:0" } }])", k));
    REQUIRE(may_sign(R"([{ device = { fs_uuid = "6a1b-2c3d" } }])", k));  // any case
    REQUIRE(may_sign(
        R"([{ device = { serial = "SanDisk_Cruzer_4C53000123-0:0", fs_uuid = "6A1B-2C3D" } }])",
        k));
    REQUIRE_FALSE(may_sign(
        R"([{ device = { serial = "SanDisk_Cruzer_4C53000123-0:0", fs_uuid = "0000-0000" } }])",
        k));
    REQUIRE_FALSE(
        may_sign(R"([{ device = { serial = "SanDisk_Cruzer" } }])", k));  // exact, not a prefix
    // A device without ID_SERIAL is named by its devnode, which holds slashes.
    const KeyFacts by_node = key(kIdA, "db", {"device:/dev/sdb1/6A1B-2C3D/db.4DKeyChain"});
    REQUIRE(may_sign(R"([{ device = { serial = "/dev/sdb1" } }])", by_node));
    REQUIRE(may_sign(R"([{ device = { fs_uuid = "6A1B-2C3D" } }])", by_node));
    // Only device sources count: a file path of the same shape is not a device.
    REQUIRE_FALSE(may_sign(R"([{ device = { fs_uuid = "6A1B-2C3D" } }])",
                           key(kIdA, "db", {"file:/dev/sdb1/6A1B-2C3D/db.4DKeyChain"})));
}

TEST_CASE("a token selector matches the token and object attributes of the key's URI",
          "[policy][keys]") {
    const KeyFacts k = key(kIdA, "tls-ec", {kTokenSource});
    REQUIRE(may_sign(R"([{ token = "pkcs11:token=web" }])", k));
    REQUIRE(may_sign(R"([{ token = "pkcs11:serial=111ed75496bd15ec" }])", k));
    REQUIRE(may_sign(R"([{ token = "pkcs11:token=web;object=tls-ec" }])", k));
    REQUIRE(may_sign(R"([{ token = "pkcs11:id=%01%02;type=private" }])", k));
    REQUIRE(may_sign(R"([{ token = "pkcs11:" }])", k));
    REQUIRE_FALSE(may_sign(R"([{ token = "pkcs11:token=db" }])", k));
    REQUIRE_FALSE(may_sign(R"([{ token = "pkcs11:token=web;object=other" }])", k));
    REQUIRE_FALSE(may_sign(R"([{ token = "pkcs11:token=web;type=secret-key" }])", k));
    REQUIRE_FALSE(may_sign(R"([{ token = "pkcs11:id=%01" }])", k));
    REQUIRE_FALSE(may_sign(R"([{ token = "pkcs11:manufacturer=SoftHSM%20project" }])", k));
    // An attribute the rule names must be in the key's URI: absent is not a match.
    REQUIRE_FALSE(may_sign(R"([{ token = "pkcs11:token=web;object=tls-ec" }])",
                           key(kIdA, "tls-ec", {"token:pkcs11:token=web;id=%01%02;type=private"})));
    REQUIRE_FALSE(may_sign(R"([{ token = "pkcs11:token=web" }])",
                           key(kIdA, "tls-ec", {"file:/pkcs11:token=web"})));
    REQUIRE_FALSE(
        may_sign(R"([{ token = "pkcs11:token=web" }])", key(kIdA, "tls-ec", {"token:garbage"})));
}

TEST_CASE("a key operation asked without a key is denied", "[policy][keys]") {
    const auto p = sign_on("\"any\"");
    const auto d = Policy::view_for(p, peer(0, 0)).decide(Operation::Sign, nullptr);
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.rule == "default deny");
    REQUIRE_FALSE(d.rule_index.has_value());
}
