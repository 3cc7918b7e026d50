// Integration: the policy file and the audit log against a real daemon, with real client
// processes (keychainctl under setpriv) running as other uids and gids.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "policy_fixture.h"
#include "test_bytes.h"
#include "test_keys.h"

using namespace keychaind;
using namespace keychaind::test;
using wire::Opcode;
using wire::Tag;

namespace {

constexpr uid_t kWeb = 2001;     // signs with web-* keys
constexpr uid_t kDb = 2002;      // in group kDbGroup: envelopes with db-kek
constexpr gid_t kDbGroup = 3002;
constexpr uid_t kStranger = 2003;  // no rule at all
constexpr uid_t kNobody = 65534;   // "nobody": public keys only, by user name
constexpr uid_t kLimited = 2004;   // public, at most 5 a second

const char* kDbKekHex = "3c1f9e2a7b4d5c6e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f50";
const char* kOtherKekHex = "aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55";
const char* kHostileLabel = "evil\n\x1b[31mred\x1b[0m %n%s%x";

const char* kPolicy = R"(
[[rule]]
name = "web signs"
peer = { uid = 2001 }
operations = ["sign", "public", "list", "wait", "subscribe"]
keys = [ { label = "web-*" } ]

[[rule]]
name = "db envelopes"
peer = { gid = 3002 }
operations = ["gen-datakey", "unwrap", "wrap", "list"]
keys = [ { label = "db-kek" } ]

[[rule]]
name = "nobody reads public keys"
peer = { user = "nobody" }
operations = ["public"]
keys = "any"

[[rule]]
name = "limited"
peer = { uid = 2004 }
operations = ["public"]
keys = "any"
rate = 5

[[rule]]
name = "root administers"
peer = { uid = 0 }
operations = ["all"]
keys = "any"
)";

struct Keys {
    TestIdentity ec = make_identity(keychaind::KeyKind::EcP256, 0, "web-ec");
    TestIdentity rsa = make_identity(keychaind::KeyKind::Rsa, 2048, "web-rsa");
    std::string json() const {
        nlohmann::json j = nlohmann::json::array();
        j.push_back(identity_entry(ec, "web-ec"));
        j.push_back(identity_entry(rsa, "web-rsa"));
        j.push_back({{"name", "db-kek"}, {"encodedKey", kDbKekHex}});
        j.push_back({{"name", "other-kek"}, {"encodedKey", kOtherKekHex}});
        j.push_back({{"name", kHostileLabel}, {"encodedKey", std::string(64, '7')}});
        return j.dump();
    }
};

const std::string kDigest(64, 'a');  // 32 bytes, hex

bool denied(const ProcessResult& r) { return r.exit_code == 3 && r.err.find("denied") != std::string::npos; }

std::set<std::string> listed_labels(const ProcessResult& r) {
    std::set<std::string> out;
    for (const auto& k : nlohmann::json::parse(r.out)) out.insert(k.at("label").get<std::string>());
    return out;
}

}  // namespace

TEST_CASE("policy: an allow/deny matrix across peers, operations and keys", "[policy]") {
    const Keys keys;
    PolicyDaemon d(keys.json(), kPolicy);

    SECTION("the web uid signs with web-* keys and nothing else") {
        auto r = d.ctl_as(kWeb, kWeb, {"sign", "web-ec", "--alg", "ecdsa-sha256", "--digest-hex", kDigest});
        INFO(r.describe);
        CHECK(r.exit_code == 0);
        r = d.ctl_as(kWeb, kWeb, {"sign", "web-rsa", "--alg", "rsa-pss-sha256", "--digest-hex", kDigest});
        CHECK(r.exit_code == 0);
        r = d.ctl_as(kWeb, kWeb, {"public", "web-rsa"});
        CHECK(r.exit_code == 0);
        r = d.ctl_as(kWeb, kWeb, {"public", "db-kek"});
        INFO(r.describe);
        CHECK(denied(r));
        CHECK(r.err.find("GET_PUBLIC") != std::string::npos);
        CHECK(r.err.find("db-kek") != std::string::npos);
        CHECK(r.err.find("rule") == std::string::npos);  // nothing about the rules
        r = d.ctl_as(kWeb, kWeb, {"gen-datakey", "db-kek", "--out-wrapped", "-"});
        CHECK(denied(r));
        r = d.ctl_as(kWeb, kWeb, {"list", "--json"});
        REQUIRE(r.exit_code == 0);
        CHECK(listed_labels(r) == std::set<std::string>{"web-ec", "web-rsa"});
    }
    SECTION("a member of the db group makes and unwraps data keys with db-kek only") {
        auto g = d.ctl_as(kDb, kDbGroup, {"gen-datakey", "db-kek", "--out-wrapped", d.out_dir + "/w.bin"});
        INFO(g.describe);
        REQUIRE(g.exit_code == 0);
        auto u = d.ctl_as(kDb, kDbGroup, {"unwrap", "--in", d.out_dir + "/w.bin", "--out", "-"});
        INFO(u.describe);
        CHECK(u.exit_code == 0);
        CHECK(denied(d.ctl_as(kDb, kDbGroup, {"gen-datakey", "other-kek", "--out-wrapped", "-"})));
        CHECK(denied(d.ctl_as(kDb, kDbGroup, {"sign", "web-ec", "--alg", "ecdsa-sha256", "--digest-hex", kDigest})));
        // The same uid without the group is nobody in particular.
        CHECK(denied(d.ctl_as(kDb, kDb, {"gen-datakey", "db-kek", "--out-wrapped", "-"})));
        auto l = d.ctl_as(kDb, kDbGroup, {"list", "--json"});
        REQUIRE(l.exit_code == 0);
        CHECK(listed_labels(l) == std::set<std::string>{"db-kek"});
    }
    SECTION("a rule by user name, and a peer no rule names") {
        CHECK(d.ctl_as(kNobody, kNobody, {"public", "web-ec"}).exit_code == 0);
        CHECK(denied(d.ctl_as(kNobody, kNobody, {"sign", "web-ec", "--alg", "ecdsa-sha256", "--digest-hex", kDigest})));
        CHECK(denied(d.ctl_as(kNobody, kNobody, {"list"})));
        CHECK(denied(d.ctl_as(kStranger, kStranger, {"status"})));
        CHECK(denied(d.ctl_as(kStranger, kStranger, {"public", "web-ec"})));
        // Denied before the lookup: a stranger cannot tell a missing key from a forbidden one.
        auto missing = d.ctl_as(kStranger, kStranger, {"public", "no-such-key"});
        CHECK(denied(missing));
    }
    SECTION("admin operations are refused to peers without an admin rule") {
        for (uid_t uid : {kWeb, kNobody, kStranger}) {
            INFO("uid " << uid);
            CHECK(denied(d.ctl_as(uid, uid, {"forget", "web-ec"})));
            CHECK(denied(d.ctl_as(uid, uid, {"lock"})));
            CHECK(denied(d.ctl_as(uid, uid, {"discover"})));
            CHECK(denied(d.ctl_as(uid, uid, {"provide", "--passphrase", "not an admin"})));
        }
        CHECK(d.ctl_as(0, 0, {"discover"}).exit_code == 0);
        CHECK(d.ctl_as(kWeb, kWeb, {"public", "web-ec"}).exit_code == 0);  // nothing was forgotten
    }

    // Every decision above is in the audit log, with who asked and which rule decided.
    const auto audit = d.audit();
    CHECK_FALSE(records_with(audit, "policy-loaded", {{"/source", d.policy_path}}).empty());
    CHECK_FALSE(records_with(audit, "key-added", {{"/label", "web-ec"}}).empty());
}

TEST_CASE("policy: audit records name the peer, operation, key and rule, and hold no secret", "[policy]") {
    const Keys keys;
    PolicyDaemon d(keys.json(), kPolicy);
    REQUIRE(d.ctl_as(kWeb, kWeb, {"sign", "web-ec", "--alg", "ecdsa-sha256", "--digest-hex", kDigest}).exit_code == 0);
    REQUIRE(denied(d.ctl_as(kWeb, kWeb, {"public", "db-kek"})));
    auto g = d.ctl_as(kDb, kDbGroup, {"gen-datakey", "db-kek", "--out-wrapped", d.out_dir + "/w.bin", "--out-key", "-"});
    INFO(g.describe);
    REQUIRE(g.exit_code == 0);
    const Bytes data_key = unbase64(g.out);
    REQUIRE(data_key.size() == 32);
    const std::string passphrase = "correct horse battery staple";
    REQUIRE(d.ctl_as(0, 0, {"provide", "--passphrase", passphrase, "--label", "from-root"}).exit_code == 0);

    const auto audit = d.audit();
    const auto allowed = records_with(audit, "decision", {{"/peer/uid", kWeb}, {"/op", "sign"}, {"/result", "allow"}});
    REQUIRE(allowed.size() == 1);
    const auto& a = allowed.front();
    CHECK(a.at("rule") == "web signs");
    CHECK(a.at("label") == "web-ec");
    CHECK(a.at("key_id") == hex(sha256(keys.ec.spki_der)));  // a public key's id: SHA-256 of its SPKI
    CHECK(a.at("peer").at("gid") == kWeb);
    CHECK(a.at("peer").at("pid").get<long long>() > 0);
    CHECK(a.at("peer").at("exe") == d.ctl);
    CHECK(a.contains("ts"));
    const auto refused = records_with(audit, "decision", {{"/peer/uid", kWeb}, {"/op", "public"}, {"/result", "deny"}});
    REQUIRE(refused.size() == 1);
    CHECK(refused.front().at("label") == "db-kek");
    CHECK(refused.front().at("rule") == "default deny");
    CHECK(records_with(audit, "decision", {{"/peer/uid", kDb}, {"/op", "gen-datakey"}, {"/rule", "db envelopes"}})
              .size() == 1);

    // No secret, in any form, in the audit log or the daemon's log.
    const std::string audit_text = d.audit_text();
    const std::string log = d.daemon->log();
    std::vector<std::string> secrets = {passphrase, kDbKekHex, kOtherKekHex};
    for (const Bytes& k : {unhex(kDbKekHex), unhex(kOtherKekHex), data_key, sha256(bytes_of(passphrase))}) {
        secrets.emplace_back(k.begin(), k.end());
        secrets.push_back(hex(k));
        secrets.push_back(base64(k));
    }
    for (const TestIdentity* id : {&keys.ec, &keys.rsa}) {
        secrets.emplace_back(id->key_der_legacy.begin(), id->key_der_legacy.end());
        secrets.push_back(hex(id->key_der_legacy));
        // A line from the middle of the PEM body: base64 of private key bytes.
        const auto body = id->key_pem_pkcs8.find('\n') + 1;
        secrets.push_back(id->key_pem_pkcs8.substr(body + 64, 48));
    }
    for (const auto& s : secrets) {
        INFO("secret of " << s.size() << " bytes");
        CHECK(audit_text.find(s) == std::string::npos);
        CHECK(log.find(s) == std::string::npos);
    }
}

TEST_CASE("policy: hostile labels come out escaped in the audit log", "[policy]") {
    const Keys keys;
    PolicyDaemon d(keys.json(), kPolicy);
    const auto listed = nlohmann::json::parse(d.ctl_as(0, 0, {"list", "--json"}).out);
    std::string hostile_id;
    for (const auto& k : listed)
        if (k.at("label") == kHostileLabel) hostile_id = k.at("id");
    REQUIRE_FALSE(hostile_id.empty());
    REQUIRE(d.ctl_as(kNobody, kNobody, {"public", hostile_id}).exit_code != 0);  // an AES key: no public part

    const std::string text = d.audit_text();
    CHECK(text.find('\x1b') == std::string::npos);
    CHECK(text.find('%') == std::string::npos);
    for (char c : text) CHECK_FALSE((static_cast<unsigned char>(c) < 0x20 && c != '\n'));
    const auto audit = d.audit();
    // The label round-trips through JSON exactly, in the key-added record and the decision.
    CHECK(records_with(audit, "key-added", {{"/label", kHostileLabel}}).size() == 1);
    CHECK(records_with(audit, "decision", {{"/label", kHostileLabel}, {"/peer/uid", kNobody}}).size() == 1);
    // And the daemon's own log shows it escaped on one line.
    CHECK(d.daemon->log().find("\x1b[31m") == std::string::npos);
}

TEST_CASE("policy: a broken policy at reload keeps the old one, and a good one takes over", "[policy]") {
    const Keys keys;
    PolicyDaemon d(keys.json(), kPolicy);
    REQUIRE(d.ctl_as(kWeb, kWeb, {"public", "web-ec"}).exit_code == 0);

    d.write_policy("[[rule]]\nname = \"broken\"\npeer = { uid = 2001 }\noperations = [\"sing\"]\nkeys = \"any\"\n");
    d.daemon->signal(SIGHUP);
    REQUIRE(d.daemon->wait_for_log("policy reload refused", std::chrono::seconds(10)));
    CHECK(d.daemon->log().find("policy.conf:4") != std::string::npos);  // file and line of the mistake
    CHECK(d.ctl_as(kWeb, kWeb, {"public", "web-ec"}).exit_code == 0);
    CHECK(denied(d.ctl_as(kStranger, kStranger, {"public", "web-ec"})));
    CHECK_FALSE(records_with(d.audit(), "policy-rejected", nlohmann::json::object()).empty());

    // A connection opened before the reload is judged by the new policy from then on.
    RawClient held(d.socket());
    d.write_policy("[[rule]]\nname = \"strangers now\"\npeer = { uid = 2003 }\noperations = [\"public\"]\nkeys = \"any\"\n"
                   "[[rule]]\nname = \"root\"\npeer = { uid = 0 }\noperations = [\"all\"]\nkeys = \"any\"\n");
    d.daemon->signal(SIGHUP);
    REQUIRE(d.daemon->wait_for_log("configuration reloaded", std::chrono::seconds(10)));
    CHECK(denied(d.ctl_as(kWeb, kWeb, {"public", "web-ec"})));
    CHECK(d.ctl_as(kStranger, kStranger, {"public", "web-ec"}).exit_code == 0);
    auto b = req(Opcode::GetPublic);
    b.str(Tag::Label, "web-ec");
    held.send(b);
    auto reply = held.receive();
    REQUIRE(reply);
    CHECK(reply->error_code() == 0);  // root, allowed by the new "root" rule
}

TEST_CASE("policy: a rule's rate and the per-uid connection limit answer BUSY and are audited", "[policy]") {
    const Keys keys;
    PolicyDaemon d(keys.json(), kPolicy, "[limits]\nmax_connections_per_uid = 3\nmax_in_flight = 2\n");

    // 20 pipelined GET_PUBLIC from uid 2004, whose rule allows 5 a second.
    int ok = 0, busy = 0;
    {
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        const pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            if (setresgid(kLimited, kLimited, kLimited) != 0 || setresuid(kLimited, kLimited, kLimited) != 0) _exit(1);
            int counts[2] = {0, 0};
            try {
                RawClient c(d.socket());
                for (uint32_t i = 1; i <= 20; ++i) {
                    auto b = req(Opcode::GetPublic, i);
                    b.str(Tag::Label, "web-ec");
                    c.send(b);
                }
                for (int i = 0; i < 20; ++i) {
                    auto r = c.receive();
                    if (!r) break;
                    if (r->error_code() == 0) ++counts[0];
                    if (r->error_code() == static_cast<uint8_t>(ErrorCode::Busy)) ++counts[1];
                }
            } catch (...) {
                _exit(2);
            }
            if (write(fds[1], counts, sizeof counts) != sizeof counts) _exit(3);
            _exit(0);
        }
        close(fds[1]);
        int counts[2] = {0, 0};
        REQUIRE(read(fds[0], counts, sizeof counts) == sizeof counts);
        close(fds[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        ok = counts[0];
        busy = counts[1];
    }
    CHECK(ok >= 5);
    CHECK(ok <= 7);
    CHECK(ok + busy == 20);
    CHECK(records_with(d.audit(), "busy", {{"/quota", "rate"}, {"/peer/uid", kLimited}, {"/rule", "limited"}}).size() ==
          static_cast<size_t>(busy));

    // 16 pipelined SIGNs on one connection that may have 2 in flight: the excess is told BUSY.
    {
        RawClient c(d.socket());
        for (uint32_t i = 1; i <= 16; ++i) {
            auto b = req(Opcode::Sign, i);
            b.str(Tag::Label, "web-rsa").u8(Tag::Algorithm, 4 /* rsa-pss-sha256 */).bytes(Tag::Data, unhex(kDigest));
            c.send(b);
        }
        size_t in_flight_busy = 0;
        for (int i = 0; i < 16; ++i) {
            auto r = c.receive();
            REQUIRE(r);
            if (r->error_code() == static_cast<uint8_t>(ErrorCode::Busy)) ++in_flight_busy;
        }
        CHECK(in_flight_busy >= 1);
        CHECK(records_with(d.audit(), "busy", {{"/quota", "in-flight"}, {"/op", "sign"}}).size() == in_flight_busy);
    }

    // Four connections from one uid when three are allowed: the fourth is told BUSY.
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (setresgid(kWeb, kWeb, kWeb) != 0 || setresuid(kWeb, kWeb, kWeb) != 0) _exit(1);
        try {
            RawClient a(d.socket()), b(d.socket()), c(d.socket());
            // The daemon accepts in order; make sure the three are in before the fourth.
            for (RawClient* x : {&a, &b, &c}) {
                auto s = req(Opcode::GetPublic);
                s.str(Tag::Label, "web-ec");
                x->send(s);
                if (!x->receive() ) _exit(4);
            }
            RawClient fourth(d.socket());
            auto r = fourth.receive(std::chrono::seconds(5));
            _exit(r && r->error_code() == static_cast<uint8_t>(ErrorCode::Busy) ? 0 : 5);
        } catch (...) {
            _exit(6);
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(records_with(d.audit(), "busy", {{"/quota", "connections"}, {"/peer/uid", kWeb}}).size() == 1);
}

TEST_CASE("policy: keychainctl policy check and explain", "[policy]") {
    TempDir dir("keychaind-policy-ctl");
    const std::string good = dir.file("good.conf"), bad = dir.file("bad.conf");
    write_file(good, kPolicy);
    write_file(bad, "[[rule]]\nname = \"typo\"\npeer = { uid = 1 }\noperations = [\"sign\"]\nkeyz = \"any\"\n");

    auto r = run_process({KEYCHAINCTL_BINARY, "policy", "check", good});
    INFO(r.describe);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("OK") != std::string::npos);
    r = run_process({KEYCHAINCTL_BINARY, "policy", "check", bad});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(bad + ":5") != std::string::npos);  // file and line of the unknown field

    r = run_process({KEYCHAINCTL_BINARY, "policy", "explain", "--policy", good, "--uid", "2001", "--gid", "2001", "--op", "sign",
                     "--label", "web-ec"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("allow by rule \"web signs\"") != std::string::npos);
    r = run_process({KEYCHAINCTL_BINARY, "policy", "explain", "--policy", good, "--uid", "2001", "--gid", "2001", "--op", "sign",
                     "--label", "db-kek"});
    CHECK(r.exit_code == 6);
    CHECK(r.out.find("deny") != std::string::npos);
    r = run_process({KEYCHAINCTL_BINARY, "policy", "explain", "--policy", good, "--uid", "2002", "--gid", "3002",
                     "--op", "gen-datakey", "--label", "db-kek"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("\"db envelopes\"") != std::string::npos);
}
