// Policy file mistakes: each is refused with the file, the line and the reason.
#include <catch2/catch.hpp>

#include "policy_test_support.h"

using namespace keychaind::policy_test;
using Catch::Contains;
using Catch::StartsWith;

namespace {
// A valid first rule, so that the mistakes below sit on lines 6 and later.
constexpr const char* kGoodRule = R"([[rule]]
name = "good"
peer = "any"
operations = ["list"]
keys = "any"
)";

std::string after_good(const std::string& text) {
    return parse_error(std::string(kGoodRule) + text);
}
}  // namespace

TEST_CASE("a valid policy parses without warnings", "[policy][parse]") {
    const auto p = parse(std::string(kGoodRule) + R"(
[[rule]]
name = "admin"
peer = { uid = 0 }
operations = ["admin"]
keys = "any"

[[device]]
name = "sticks"
match = { vendor_id = "0781" }
)");
    REQUIRE(p->rule_count() == 2);
    REQUIRE(p->device_rule_count() == 1);
    REQUIRE(p->warnings().empty());
    REQUIRE(p->source() == kPath);
}

TEST_CASE("an unknown operation is refused on its line", "[policy][parse]") {
    const auto e = after_good(R"(
[[rule]]
name = "typo"
peer = "any"
operations = ["sign", "sing"]
keys = "any"
)");
    REQUIRE_THAT(e, StartsWith(at_line(10)) && Contains("unknown operation \"sing\"") &&
                        Contains("gen-datakey"));
}

TEST_CASE("an unknown field anywhere is refused on its line", "[policy][parse]") {
    SECTION("in a rule") {
        REQUIRE_THAT(after_good("[[rule]]\nname = \"x\"\npeer = \"any\"\noperations = "
                                "[\"lock\"]\nacton = \"deny\"\n"),
                     StartsWith(at_line(10)) && Contains("unknown field \"acton\" in [[rule]]"));
    }
    SECTION("in a peer") {
        REQUIRE_THAT(
            after_good(
                "[[rule]]\nname = \"x\"\npeer = { usr = \"www-data\" }\noperations = [\"lock\"]\n"),
            StartsWith(at_line(8)) && Contains("unknown field \"usr\" in peer"));
    }
    SECTION("in a key selector") {
        REQUIRE_THAT(
            after_good("[[rule]]\nname = \"x\"\npeer = \"any\"\noperations = [\"sign\"]\n"
                       "keys = [{ label = \"a\" },\n  { lable = \"web-*\" }]\n"),
            StartsWith(at_line(11)) && Contains("unknown field \"lable\" in a key selector"));
    }
    SECTION("in a key selector's device") {
        REQUIRE_THAT(after_good("[[rule]]\nname = \"x\"\npeer = \"any\"\noperations = [\"sign\"]\n"
                                "keys = [{ device = { uuid = \"1234\" } }]\n"),
                     StartsWith(at_line(10)) && Contains("unknown field \"uuid\""));
    }
    SECTION("in a device rule's match") {
        REQUIRE_THAT(after_good("[[device]]\nname = \"d\"\nmatch = { vendor = \"0781\" }\n"),
                     StartsWith(at_line(8)) && Contains("unknown field \"vendor\" in match"));
    }
    SECTION("at the top level") {
        REQUIRE_THAT(after_good("[[rules]]\nname = \"x\"\n"),
                     StartsWith(at_line(6)) && Contains("\"rules\""));
    }
}

TEST_CASE("a key id that is not 32 or 64 hex digits is refused", "[policy][parse]") {
    const std::string head = "[[rule]]\nname = \"x\"\npeer = \"any\"\noperations = [\"sign\"]\n";
    REQUIRE_THAT(after_good(head + "keys = [{ id = \"0123\" }]\n"),
                 StartsWith(at_line(10)) && Contains("id \"0123\" is not a key id"));
    REQUIRE_THAT(after_good(head + "keys = [{ id = \"0123456789abcdef0123456789abcdeg\" }]\n"),
                 StartsWith(at_line(10)) && Contains("is not a key id"));
    REQUIRE(after_good(head + "keys = [{ id = \"0123456789ABCDEF0123456789abcdef\" }]\n").empty());
    REQUIRE(after_good(head + "keys = [{ id = \"" + std::string(64, 'a') + "\" }]\n").empty());
}

TEST_CASE("an empty peer table is refused: \"any\" says it", "[policy][parse]") {
    REQUIRE_THAT(after_good("[[rule]]\nname = \"x\"\npeer = {}\noperations = [\"lock\"]\n"),
                 StartsWith(at_line(8)) && Contains("peer = \"any\""));
    REQUIRE_THAT(after_good("[[rule]]\nname = \"x\"\npeer = \"anyone\"\noperations = [\"lock\"]\n"),
                 StartsWith(at_line(8)) && Contains("peer must be \"any\" or a table"));
}

TEST_CASE("a rule name used twice is refused on the second one", "[policy][parse]") {
    REQUIRE_THAT(after_good("[[rule]]\nname = \"other\"\npeer = \"any\"\noperations = [\"lock\"]\n"
                            "[[rule]]\nname = \"good\"\npeer = \"any\"\noperations = [\"lock\"]\n"),
                 StartsWith(at_line(11)) && Contains("\"good\" is defined twice"));
    REQUIRE_THAT(after_good("[[device]]\nname = \"d\"\nmatch = \"any\"\n[[device]]\nname = "
                            "\"d\"\nmatch = \"any\"\n"),
                 StartsWith(at_line(10)) && Contains("\"d\" is defined twice"));
}

TEST_CASE("values of the wrong type are refused on their line", "[policy][parse]") {
    const std::string rule = "[[rule]]\nname = \"x\"\n";
    SECTION("name") {
        REQUIRE_THAT(after_good("[[rule]]\nname = 5\npeer = \"any\"\noperations = [\"lock\"]\n"),
                     StartsWith(at_line(7)) && Contains("name must be a string"));
    }
    SECTION("uid as a string") {
        REQUIRE_THAT(after_good(rule + "peer = { uid = \"0\" }\noperations = [\"lock\"]\n"),
                     StartsWith(at_line(8)) && Contains("uid must be an integer"));
    }
    SECTION("a negative gid") {
        REQUIRE_THAT(after_good(rule + "peer = { gid = [1, -1] }\noperations = [\"lock\"]\n"),
                     StartsWith(at_line(8)) && Contains("out of range"));
    }
    SECTION("an empty array of alternatives") {
        REQUIRE_THAT(after_good(rule + "peer = { user = [] }\noperations = [\"lock\"]\n"),
                     StartsWith(at_line(8)) && Contains("must not be an empty array"));
    }
    SECTION("peer as a number") {
        REQUIRE_THAT(after_good(rule + "peer = 0\noperations = [\"lock\"]\n"),
                     StartsWith(at_line(8)) && Contains("peer must be"));
    }
    SECTION("operations as numbers") {
        REQUIRE_THAT(after_good(rule + "peer = \"any\"\noperations = [1]\n"),
                     StartsWith(at_line(9)) && Contains("must be a string"));
    }
    SECTION("keys as a table") {
        REQUIRE_THAT(
            after_good(rule +
                       "peer = \"any\"\noperations = [\"sign\"]\nkeys = { label = \"x\" }\n"),
            StartsWith(at_line(10)) && Contains("keys must be \"any\" or an array of selectors"));
    }
    SECTION("an empty keys array or selector") {
        REQUIRE_THAT(after_good(rule + "peer = \"any\"\noperations = [\"sign\"]\nkeys = []\n"),
                     StartsWith(at_line(10)) && Contains("selects no key"));
        REQUIRE_THAT(after_good(rule + "peer = \"any\"\noperations = [\"sign\"]\nkeys = [{}]\n"),
                     StartsWith(at_line(10)) && Contains("needs at least one of"));
    }
    SECTION("action") {
        REQUIRE_THAT(
            after_good(rule + "peer = \"any\"\noperations = [\"lock\"]\naction = \"permit\"\n"),
            StartsWith(at_line(10)) && Contains("neither \"allow\" nor \"deny\""));
        REQUIRE_THAT(after_good(rule + "peer = \"any\"\noperations = [\"lock\"]\naction = true\n"),
                     StartsWith(at_line(10)) && Contains("action must be a string"));
    }
    SECTION("rate") {
        REQUIRE_THAT(
            after_good(rule + "peer = \"any\"\noperations = [\"lock\"]\nrate = \"fast\"\n"),
            StartsWith(at_line(10)) && Contains("rate must be an integer"));
        REQUIRE_THAT(after_good(rule + "peer = \"any\"\noperations = [\"lock\"]\nrate = 0\n"),
                     StartsWith(at_line(10)) && Contains("out of range"));
        REQUIRE_THAT(
            after_good(rule +
                       "peer = \"any\"\noperations = [\"lock\"]\naction = \"deny\"\nrate = 5\n"),
            StartsWith(at_line(11)) && Contains("allow rules only"));
    }
    SECTION("tethered") {
        REQUIRE_THAT(after_good("[[device]]\nname = \"d\"\nmatch = \"any\"\ntethered = \"yes\"\n"),
                     StartsWith(at_line(9)) && Contains("tethered must be true or false"));
    }
    SECTION("[rule] instead of [[rule]]") {
        REQUIRE_THAT(parse_error("[rule]\nname = \"x\"\n"),
                     StartsWith(at_line(1)) && Contains("[[rule]]"));
    }
}

TEST_CASE("a rule with key operations needs keys", "[policy][parse]") {
    REQUIRE_THAT(
        after_good("\n[[rule]]\nname = \"x\"\npeer = \"any\"\noperations = [\"lock\", \"sign\"]\n"),
        StartsWith(at_line(7)) && Contains("rule \"x\" needs keys") && Contains("sign"));
    REQUIRE_THAT(after_good("[[rule]]\nname = \"x\"\npeer = \"any\"\noperations = [\"admin\"]\n"),
                 Contains("needs keys") && Contains("forget"));  // forget is an admin key operation
    // Operations decided on the peer alone need no keys.
    REQUIRE(after_good("[[rule]]\nname = \"x\"\npeer = \"any\"\noperations = [\"provide\", "
                       "\"lock\", \"unlock\", "
                       "\"discover\"]\n")
                .empty());
}

TEST_CASE("keys on a rule without key operations is a warning, not silence", "[policy][parse]") {
    const auto p = parse(
        "[[rule]]\nname = \"x\"\npeer = \"any\"\noperations = [\"lock\"]\nkeys = [{ label = \"a\" "
        "}]\n");
    REQUIRE(p->warnings().size() == 1);
    REQUIRE_THAT(p->warnings()[0], StartsWith(at_line(5)) && Contains("no effect on lock"));
}

TEST_CASE("key selectors on a rule with peer-only operations are a warning", "[policy][parse]") {
    const auto p = parse(
        "[[rule]]\nname = \"x\"\npeer = \"any\"\noperations = [\"all\"]\naction = \"deny\"\n"
        "keys = [{ label = \"old\" }]\n");
    REQUIRE(p->warnings().size() == 1);
    REQUIRE_THAT(
        p->warnings()[0],
        StartsWith(at_line(6)) && Contains("keys does not narrow provide, lock, unlock, discover"));
    // As the warning says: lock is denied whatever the key.
    REQUIRE_FALSE(Policy::view_for(p, peer(0, 0)).decide(Operation::Lock, nullptr).allowed);
    REQUIRE(Policy::view_for(p, peer(0, 0)).decide(Operation::Lock, nullptr).rule == "x");
    // keys = "any" says it plainly: no warning.
    REQUIRE(
        parse("[[rule]]\nname = \"x\"\npeer = \"any\"\noperations = [\"all\"]\nkeys = \"any\"\n")
            ->warnings()
            .empty());
}

TEST_CASE("required fields are named when missing", "[policy][parse]") {
    REQUIRE_THAT(after_good("[[rule]]\npeer = \"any\"\noperations = [\"lock\"]\n"),
                 StartsWith(at_line(6)) && Contains("needs a name"));
    REQUIRE_THAT(after_good("[[rule]]\nname = \"x\"\noperations = [\"lock\"]\n"),
                 StartsWith(at_line(6)) && Contains("needs a peer"));
    REQUIRE_THAT(after_good("[[rule]]\nname = \"x\"\npeer = \"any\"\n"),
                 StartsWith(at_line(6)) && Contains("needs operations"));
    REQUIRE_THAT(after_good("[[device]]\nname = \"d\"\n"),
                 StartsWith(at_line(6)) && Contains("needs match"));
    REQUIRE_THAT(after_good("[[rule]]\nname = \"x\"\npeer = \"any\"\noperations = []\n"),
                 StartsWith(at_line(9)) && Contains("must not be an empty array"));
}

TEST_CASE("bad values inside selectors and peers are refused on their line", "[policy][parse]") {
    const std::string head = "[[rule]]\nname = \"x\"\npeer = \"any\"\noperations = [\"sign\"]\n";
    REQUIRE_THAT(after_good(head + "keys = [{ source = \"usb\" }]\n"),
                 StartsWith(at_line(10)) && Contains("source \"usb\" is not one of"));
    REQUIRE_THAT(after_good(head + "keys = [{ token = \"token=web\" }]\n"),
                 StartsWith(at_line(10)) && Contains("is not a pkcs11: URI"));
    REQUIRE_THAT(after_good(head + "keys = [{ token = \"pkcs11:token=web?pin-value=1234\" }]\n"),
                 StartsWith(at_line(10)) && Contains("query attributes"));
    REQUIRE_THAT(after_good(head + "keys = [{ token = \"pkcs11:slot-id=1\" }]\n"),
                 StartsWith(at_line(10)) && Contains("does not match on"));
    REQUIRE_THAT(after_good(head + "keys = [{ token = \"pkcs11:id=%zz\" }]\n"),
                 StartsWith(at_line(10)) && Contains("not a valid pkcs11: URI"));
    REQUIRE_THAT(after_good(head + "keys = [{ device = {} }]\n"),
                 StartsWith(at_line(10)) && Contains("serial, fs_uuid"));
    REQUIRE_THAT(after_good(head + "keys = [{ label = \"\" }]\n"),
                 StartsWith(at_line(10)) && Contains("must not be empty"));
    const std::string rule = "[[rule]]\nname = \"y\"\noperations = [\"lock\"]\n";
    REQUIRE_THAT(after_good(rule + "peer = { exe = \"nginx\" }\n"),
                 StartsWith(at_line(9)) && Contains("not an absolute path"));
    REQUIRE_THAT(after_good(rule + "peer = { unit = \"nginx\" }\n"),
                 StartsWith(at_line(9)) && Contains("\"nginx.service\""));
    REQUIRE_THAT(after_good(rule + "peer = { unit = [\"nginx.service\", \"backup.timer\"] }\n"),
                 StartsWith(at_line(9)) &&
                     Contains("\"backup.timer\" is not the name of a service or scope"));
    REQUIRE(
        after_good(rule + "peer = { unit = [\"nginx.service\", \"session-3.scope\"] }\n").empty());
    REQUIRE_THAT(after_good("[[device]]\nname = \"d\"\nmatch = { vendor_id = \"781\" }\n"),
                 StartsWith(at_line(8)) && Contains("not 4 hex digits"));
    REQUIRE_THAT(after_good("[[device]]\nname = \"d\"\nmatch = {}\n"),
                 StartsWith(at_line(8)) && Contains("match = \"any\""));
}

TEST_CASE("a TOML syntax error carries its line", "[policy][parse]") {
    REQUIRE_THAT(after_good("[[rule]]\nname = \"x\npeer = \"any\"\n"), StartsWith(at_line(7)));
}

TEST_CASE("a policy without rules parses, denies and says so", "[policy][parse]") {
    const auto p = parse("# nothing yet\n");
    REQUIRE(p->rule_count() == 0);
    REQUIRE(p->warnings().size() == 1);
    REQUIRE_THAT(p->warnings()[0], Contains("every request is denied"));
    REQUIRE_FALSE(allows(p, peer(0, 0), Operation::Lock));
}
