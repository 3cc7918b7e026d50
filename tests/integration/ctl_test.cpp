// Integration: the keychainctl binary against a real keychaind process. Each test runs the
// built keychainctl with fork/exec, feeds its standard input, and checks its standard output,
// standard error, exit code and the files it writes.
#include <fcntl.h>
#include <mbedtls/base64.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/sha512.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "daemon_fixture.h"
#include "keychain/client.hpp"
#include "test_bytes.h"
#include "test_keys.h"

#ifndef KEYCHAINCTL_BINARY
#error "KEYCHAINCTL_BINARY must name the built keychainctl"
#endif

using namespace keychaind::test;
using keychaind::KeyKind;
using Clock = std::chrono::steady_clock;

namespace {

// Never a real daemon's socket: a test that forgets --socket must not reach one.
constexpr const char* kNowhere = "/nonexistent/keychaind-ctl-test.sock";

unsigned mode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

struct RunResult : ProcessResult {
    double ms = 0;
};

struct RunOptions {
    std::optional<std::string> socket_env;  // KEYCHAIND_SOCKET; default: a path where nothing listens
    std::optional<std::string> stdin_data;  // default: /dev/null
};

// `program` with `args`, stdout and stderr captured, killed (and the test failed) after 20 s.
RunResult run(const std::string& program, const std::vector<std::string>& args, const RunOptions& opts = {}) {
    ProcessOptions po;
    po.stdin_data = opts.stdin_data;
    po.timeout = std::chrono::seconds(20);
    po.env = {"KEYCHAIND_SOCKET=" + opts.socket_env.value_or(kNowhere)};
    std::vector<std::string> argv{program};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto t0 = Clock::now();
    RunResult r{run_process(argv, po)};
    r.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (r.exit_code == 128 + SIGKILL) FAIL("killed after 20 s: " << program);
    return r;
}

RunResult ctl(const std::vector<std::string>& args, const RunOptions& opts = {}) {
    return run(KEYCHAINCTL_BINARY, args, opts);
}

RunOptions env_socket(const std::string& socket) {
    RunOptions o;
    o.socket_env = socket;
    return o;
}

RunOptions with_stdin(const std::string& data) {
    RunOptions o;
    o.stdin_data = data;
    return o;
}

bool is_hex_line(const std::string& s, size_t digits) {
    return std::regex_match(s, std::regex("[0-9a-f]{" + std::to_string(digits) + "}\n"));
}

const nlohmann::json* find_key(const nlohmann::json& arr, const std::string& field, const std::string& value) {
    for (const auto& k : arr)
        if (k.contains(field) && k[field] == value) return &k;
    return nullptr;
}

}  // namespace

TEST_CASE("keychainctl new-key writes a 0600 file the daemon loads, and never overwrites it", "[integration]") {
    KeysDaemon d("");
    const std::string path = d.keys_dir + "/orders.4DKeyChain";
    const auto made = ctl({"new-key", "--name", "orders-kek", "--out", path});
    INFO(made.describe);
    REQUIRE(made.exit_code == 0);
    CHECK(made.err.empty());
    REQUIRE(is_hex_line(made.out, 32));
    const std::string id = made.out.substr(0, 32);
    CHECK(mode_of(path) == 0600);

    const std::string content = read_file_text(path);
    const auto j = nlohmann::json::parse(content);
    REQUIRE(j.is_object());
    CHECK(j.at("name") == "orders-kek");
    const std::string encoded = j.at("encodedKey").get<std::string>();
    REQUIRE(std::regex_match(encoded, std::regex("[0-9a-fA-F]{64}")));
    CHECK(symmetric_id(unhex(encoded)) == id);
    CHECK(j.size() == 2);

    // The daemon has not looked yet.
    const auto before = ctl({"list"}, env_socket(d.socket()));
    CHECK(before.exit_code == 0);
    CHECK(before.out == "no keys\n");

    const auto disc = ctl({"discover", "--socket", d.socket()});
    INFO(disc.describe);
    CHECK(disc.exit_code == 0);
    CHECK(disc.out == "1 new key\n");

    const auto list = ctl({"list"}, env_socket(d.socket()));
    INFO(list.describe);
    CHECK(list.exit_code == 0);
    CHECK(list.out.find(id) != std::string::npos);
    CHECK(list.out.find("orders-kek") != std::string::npos);
    CHECK(list.out.find("aes-256") != std::string::npos);
    CHECK(list.out.find("file:" + path + "#0") != std::string::npos);

    // The key works: a data key made with it by label.
    keychain::Client kc(d.socket());
    const auto dk = kc.generate_data_key("orders-kek");
    CHECK(hex(dk.wrapped.data() + 4, 16) == id);

    SECTION("new-key on an existing path fails and leaves the file alone") {
        const auto again = ctl({"new-key", "--name", "orders-kek", "--out", path});
        INFO(again.describe);
        CHECK(again.exit_code != 0);
        CHECK(again.exit_code == 5);  // docs/client.md: a file that already exists is a local I/O error
        CHECK(again.out.empty());
        CHECK(again.err.rfind("keychainctl: ", 0) == 0);
        CHECK(read_file_text(path) == content);
        CHECK(mode_of(path) == 0600);
    }
    SECTION("a file not named *.4DKeyChain gets a note and is not loaded") {
        const std::string other = d.keys_dir + "/other.json";
        const auto r = ctl({"new-key", "--out", other});
        INFO(r.describe);
        CHECK(r.exit_code == 0);
        CHECK(r.err.find("4DKeyChain") != std::string::npos);
        CHECK(exists(other));
        const auto disc2 = ctl({"discover", "--socket", d.socket()});
        CHECK(disc2.out == "0 new keys\n");
    }
}

TEST_CASE("keychainctl new-key --passphrase-stdin stores the key the passphrase implies", "[integration]") {
    KeysDaemon d("");
    const std::string pass = "correct horse battery staple";
    const std::string path = d.keys_dir + "/pp.4DKeyChain";
    const auto made = ctl({"new-key", "--passphrase-stdin", "--out", path}, with_stdin(pass + "\n"));
    INFO(made.describe);
    REQUIRE(made.exit_code == 0);
    const std::string key_hex = hex(sha256(Bytes(pass.begin(), pass.end())));
    CHECK(key_hex == "c4bbcb1fbec99d65bf59d85c8cb62ee2db963f0fe106f483d9afa73bd4e39a8a");  // docs/keychain-file.md
    const std::string id = symmetric_id(unhex(key_hex));
    CHECK(id == "e2476da18c49381dd34d6c5d1f398c9f");
    CHECK(made.out == id + "\n");
    const auto j = nlohmann::json::parse(read_file_text(path));
    CHECK(j.at("encodedKey").get<std::string>() == key_hex);
    CHECK_FALSE(j.contains("passPhrase"));
    CHECK(mode_of(path) == 0600);

    REQUIRE(ctl({"discover", "--socket", d.socket()}).exit_code == 0);
    const auto list = ctl({"list", "--json", "--socket", d.socket()});
    INFO(list.describe);
    REQUIRE(list.exit_code == 0);
    const auto keys = nlohmann::json::parse(list.out);
    const auto* k = find_key(keys, "id", id);
    REQUIRE(k != nullptr);
    CHECK((*k)["label"] == "pp");  // the file name without its extension

    SECTION("an empty passphrase is a usage error and writes nothing") {
        const std::string empty_path = d.keys_dir + "/empty.4DKeyChain";
        const auto r = ctl({"new-key", "--passphrase-stdin", "--out", empty_path}, with_stdin("\n"));
        INFO(r.describe);
        CHECK(r.exit_code == 1);
        CHECK_FALSE(exists(empty_path));
    }
    SECTION("new-key --json names the file and the id") {
        const std::string p2 = d.keys_dir + "/pp2.4DKeyChain";
        const auto r = ctl({"new-key", "--passphrase-stdin", "--json", "--out", p2}, with_stdin(pass));
        INFO(r.describe);
        REQUIRE(r.exit_code == 0);
        const auto out = nlohmann::json::parse(r.out);
        CHECK(out.at("key_id") == id);
        CHECK(out.at("file") == p2);
    }
}

TEST_CASE("keychainctl gen-datakey, unwrap, rewrap and wrap through files", "[integration]") {
    KeysDaemon d(two_keks_json());
    TempDir work("keychainctl-test");
    const std::string s = d.socket();
    const std::string kek1_id = symmetric_id(unhex(kKek1Hex));
    const std::string kek2_id = symmetric_id(unhex(kKek2Hex));
    const std::string wrapped = work.file("dk.kcw");
    const std::string key = work.file("dk.bin");
    const std::string key2 = work.file("dk2.bin");

    const auto gen = ctl({"gen-datakey", "kek-1", "--context", "db:users", "--out-wrapped", wrapped, "--out-key", key,
                          "--socket", s});
    INFO(gen.describe);
    REQUIRE(gen.exit_code == 0);
    CHECK(gen.out.empty());
    CHECK(mode_of(wrapped) == 0600);
    CHECK(mode_of(key) == 0600);
    const Bytes w = read_file_bytes(wrapped);
    REQUIRE(w.size() > 20);
    CHECK(std::string(w.begin(), w.begin() + 4) == "KCW1");
    CHECK(hex(w.data() + 4, 16) == kek1_id);
    CHECK(read_file_bytes(key).size() == 32);

    const auto un = ctl({"unwrap", "--in", wrapped, "--context", "db:users", "--out", key2}, env_socket(s));
    INFO(un.describe);
    REQUIRE(un.exit_code == 0);
    CHECK(mode_of(key2) == 0600);
    const auto cmp = run("/usr/bin/cmp", {key, key2});
    INFO(cmp.describe);
    CHECK(cmp.exit_code == 0);
    CHECK(read_file_bytes(key) == read_file_bytes(key2));

    SECTION("unwrap never overwrites its output file") {
        write_file_bytes(key2, Bytes{'o', 'l', 'd'});
        const auto r = ctl({"unwrap", "--in", wrapped, "--context", "db:users", "--out", key2, "--socket", s});
        INFO(r.describe);
        CHECK(r.exit_code == 5);
        CHECK(read_file_bytes(key2) == Bytes{'o', 'l', 'd'});
    }
    SECTION("the wrong context is the daemon's BAD_REQUEST: exit 3") {
        const std::string out = work.file("nope.bin");
        const auto r = ctl({"unwrap", "--in", wrapped, "--context", "db:orders", "--out", out, "--socket", s});
        INFO(r.describe);
        CHECK(r.exit_code == 3);
        CHECK(std::regex_match(r.err, std::regex("keychainctl: BAD_REQUEST: [^\n]+\n")));
        CHECK(r.out.empty());
        CHECK_FALSE(exists(out));
    }
    SECTION("--out - prints base64, and a base64 wrapped file unwraps too") {
        const auto g = ctl({"gen-datakey", "kek-2", "--context-hex", "00ff10", "--out-wrapped", "-", "--socket", s});
        INFO(g.describe);
        REQUIRE(g.exit_code == 0);
        const Bytes w2 = unbase64(g.out);
        CHECK(hex(w2.data() + 4, 16) == kek2_id);
        write_file_bytes(work.file("b64.kcw"), Bytes(g.out.begin(), g.out.end()));
        const auto u = ctl({"unwrap", "--in", work.file("b64.kcw"), "--context-hex", "00ff10", "--out", "-", "--socket", s});
        INFO(u.describe);
        REQUIRE(u.exit_code == 0);
        CHECK(unbase64(u.out).size() == 32);
        // The same through the library.
        keychain::Client kc(s);
        const Bytes ctx{0x00, 0xff, 0x10};
        const auto dk = kc.unwrap(w2, ctx);
        CHECK(Bytes(dk.data(), dk.data() + dk.size()) == unbase64(u.out));
    }
    SECTION("rewrap to kek-2, then wrap of the same key file, both unwrap to it") {
        const std::string w2 = work.file("dk2.kcw");
        const auto r = ctl({"rewrap", "--in", wrapped, "--to", "kek-2", "--context", "db:users", "--out", w2, "--json",
                            "--socket", s});
        INFO(r.describe);
        REQUIRE(r.exit_code == 0);
        const auto rj = nlohmann::json::parse(r.out);
        CHECK(rj.at("kek_id") == kek2_id);
        CHECK(hex(read_file_bytes(w2).data() + 4, 16) == kek2_id);
        const std::string key3 = work.file("dk3.bin");
        REQUIRE(ctl({"unwrap", "--in", w2, "--context", "db:users", "--out", key3, "--socket", s}).exit_code == 0);
        CHECK(read_file_bytes(key3) == read_file_bytes(key));

        const std::string w3 = work.file("dk3.kcw");
        const auto wr = ctl({"wrap", "kek-1", "--key-in", key, "--context", "x", "--out", w3, "--socket", s});
        INFO(wr.describe);
        REQUIRE(wr.exit_code == 0);
        const std::string key4 = work.file("dk4.bin");
        REQUIRE(ctl({"unwrap", "--in", w3, "--context", "x", "--out", key4, "--socket", s}).exit_code == 0);
        CHECK(read_file_bytes(key4) == read_file_bytes(key));
    }
    SECTION("gen-datakey --json reports the KEK id") {
        const auto g = ctl({"gen-datakey", "kek-2", "--out-wrapped", work.file("j.kcw"), "--json", "--socket", s});
        INFO(g.describe);
        REQUIRE(g.exit_code == 0);
        const auto gj = nlohmann::json::parse(g.out);
        CHECK(gj.at("kek_id") == kek2_id);
        CHECK(gj.at("wrapped_file") == work.file("j.kcw"));
        CHECK_FALSE(gj.contains("key_file"));
    }
}

TEST_CASE("keychainctl sign --data-file and public give signatures mbedTLS verifies", "[integration]") {
    const auto p256 = make_identity(KeyKind::EcP256);
    const auto rsa = make_identity(KeyKind::Rsa, 2048);
    nlohmann::json j = nlohmann::json::array();
    j.push_back({{"name", "web"}, {"privateKey", p256.key_pem_pkcs8}, {"certificate", p256.cert_pem}});
    j.push_back({{"name", "rsa"}, {"privateKey", rsa.key_pem_legacy}});
    KeysDaemon d(j.dump());
    TempDir work("keychainctl-test");
    const std::string s = d.socket();
    Bytes data(100000);
    for (size_t off = 0; off < data.size(); off += 1000)  // CTR-DRBG gives at most 1024 bytes a call
        REQUIRE(random_bytes(nullptr, data.data() + off, std::min<size_t>(1000, data.size() - off)) == 0);
    const std::string data_file = work.file("release.tar");
    write_file_bytes(data_file, data);

    const std::string sig_file = work.file("release.sig");
    const auto r = ctl({"sign", "web", "--alg", "ecdsa-sha256", "--data-file", data_file, "--out", sig_file, "--socket", s});
    INFO(r.describe);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.empty());
    CHECK(signature_verifies(p256.spki_der, keychaind::SignAlgorithm::EcdsaSha256, sha256(data), read_file_bytes(sig_file)));

    // PKCS#1 v1.5 before PSS: PKCS#1 after PSS with one key is a daemon bug, covered by
    // client_test.cpp ("RSA PKCS#1 v1.5 signing still works after ...").
    const auto hexsig = ctl({"sign", "rsa", "--alg", "rsa-pkcs1-sha256", "--digest-hex", hex(sha256(data)), "--json",
                             "--socket", s});
    INFO(hexsig.describe);
    REQUIRE(hexsig.exit_code == 0);
    const auto hj = nlohmann::json::parse(hexsig.out);
    CHECK(signature_verifies(rsa.spki_der, keychaind::SignAlgorithm::RsaPkcs1Sha256, sha256(data), unbase64(hj.at("signature").get<std::string>())));

    const auto pss = ctl({"sign", "rsa", "--alg", "rsa-pss-sha384", "--data-file", data_file}, env_socket(s));
    INFO(pss.describe);
    REQUIRE(pss.exit_code == 0);
    const Bytes pss_sig = unbase64(pss.out);
    CHECK(pss_sig.size() == 256);
    CHECK(signature_verifies(rsa.spki_der, keychaind::SignAlgorithm::RsaPssSha384, sha384(data), pss_sig));
    CHECK_FALSE(signature_verifies(rsa.spki_der, keychaind::SignAlgorithm::RsaPssSha384, sha384(Bytes(data.begin() + 1, data.end())), pss_sig));

    // A digest of the wrong length is refused before the daemon is asked.
    const auto short_digest = ctl({"sign", "web", "--alg", "ecdsa-sha256", "--digest-hex", "00112233", "--socket", s});
    CHECK(short_digest.exit_code == 1);
    CHECK(ctl({"sign", "web", "--alg", "ecdsa-md5", "--data-file", data_file, "--socket", s}).exit_code == 1);

    // public: the PEM public key is the identity's SPKI; the certificate is the file's.
    const std::string pub_file = work.file("web.pub.pem");
    const std::string cert_file = work.file("web.crt.pem");
    const auto pub = ctl({"public", "web", "--out-key", pub_file, "--out-cert", cert_file, "--socket", s});
    INFO(pub.describe);
    REQUIRE(pub.exit_code == 0);
    const std::string pem = read_file_text(pub_file);
    const std::string begin = "-----BEGIN PUBLIC KEY-----\n";
    const std::string end = "-----END PUBLIC KEY-----\n";
    REQUIRE(pem.rfind(begin, 0) == 0);
    REQUIRE(pem.size() > begin.size() + end.size());
    CHECK(unbase64(pem.substr(begin.size(), pem.size() - begin.size() - end.size())) == p256.spki_der);
    const std::string cert_pem = read_file_text(cert_file);
    const std::string cb = "-----BEGIN CERTIFICATE-----\n";
    const std::string ce = "-----END CERTIFICATE-----\n";
    REQUIRE(cert_pem.rfind(cb, 0) == 0);
    CHECK(unbase64(cert_pem.substr(cb.size(), cert_pem.size() - cb.size() - ce.size())) == p256.cert_der);
}

TEST_CASE("keychainctl exit codes match the README's table", "[integration]") {
    KeysDaemon d(two_keks_json());
    TempDir work("keychainctl-test");
    const std::string s = d.socket();

    SECTION("0: success") {
        const auto r = ctl({"status", "--socket", s});
        INFO(r.describe);
        CHECK(r.exit_code == 0);
        CHECK(r.out.find("keys present: 2\n") != std::string::npos);
        CHECK(r.out.find("locked: no\n") != std::string::npos);
        CHECK(r.err.empty());
        const auto w = ctl({"wait", "kek-1", "--timeout", "1", "--socket", s});
        INFO(w.describe);
        CHECK(w.exit_code == 0);
        CHECK(w.out.find(symmetric_id(unhex(kKek1Hex))) != std::string::npos);
    }
    SECTION("1: usage errors") {
        CHECK(ctl({}).exit_code == 1);
        CHECK(ctl({"no-such-command"}).exit_code == 1);
        CHECK(ctl({"status", "--bogus", "--socket", s}).exit_code == 1);
        CHECK(ctl({"wait", "kek-1", "--timeout", "0", "--socket", s}).exit_code == 1);
        CHECK(ctl({"forget", "--socket", s}).exit_code == 1);
        CHECK(ctl({"gen-datakey", "kek-1", "--socket", s}).exit_code == 1);  // --out-wrapped is required
        CHECK(ctl({"sign", "kek-1", "--alg", "ecdsa-sha256", "--socket", s}).exit_code == 1);
    }
    SECTION("2: no daemon at the socket") {
        const std::string nowhere = work.file("none.sock");
        const auto r = ctl({"status", "--socket", nowhere});
        INFO(r.describe);
        CHECK(r.exit_code == 2);
        CHECK(r.err.rfind("keychainctl: ", 0) == 0);
        CHECK(r.err.find(nowhere) != std::string::npos);
        CHECK(r.out.empty());
        // Through $KEYCHAIND_SOCKET as well.
        const auto e = ctl({"list"}, env_socket(nowhere));
        CHECK(e.exit_code == 2);
        CHECK(e.err.find(nowhere) != std::string::npos);
        // A socket file nobody listens on.
        d.daemon->stop(SIGKILL);  // leaves its socket file behind
        const auto dead = ctl({"status", "--socket", s});
        INFO(dead.describe);
        CHECK(dead.exit_code == 2);
    }
    SECTION("3: the daemon answered an error, printed as 'keychainctl: CODE: message'") {
        const std::string digest(64, 'a');
        const auto r = ctl({"sign", "nosuch", "--alg", "ecdsa-sha256", "--digest-hex", digest, "--socket", s});
        INFO(r.describe);
        CHECK(r.exit_code == 3);
        CHECK(std::regex_match(r.err, std::regex("keychainctl: NO_SUCH_KEY: [^\n]+\n")));
        const auto unsupported = ctl({"sign", "kek-1", "--alg", "ecdsa-sha256", "--digest-hex", digest, "--socket", s});
        CHECK(unsupported.exit_code == 3);
        CHECK(std::regex_match(unsupported.err, std::regex("keychainctl: UNSUPPORTED: [^\n]+\n")));
        CHECK(ctl({"forget", "kek-2", "--socket", s}).out == "forgot 1 key\n");
        const auto gone = ctl({"gen-datakey", "kek-2", "--out-wrapped", work.file("x.kcw"), "--socket", s});
        CHECK(gone.exit_code == 3);
        CHECK(std::regex_match(gone.err, std::regex("keychainctl: KEY_NOT_PRESENT: [^\n]+\n")));
        CHECK_FALSE(exists(work.file("x.kcw")));
    }
    SECTION("4: wait timed out") {
        const auto r = ctl({"wait", "never-coming", "--timeout", "1", "--socket", s});
        INFO(r.describe);
        CHECK(r.exit_code == 4);
        CHECK(r.ms >= 900);
        CHECK(r.ms < 10000);
        CHECK(r.out.empty());
        CHECK(r.err.rfind("keychainctl: TIMEOUT: ", 0) == 0);
    }
    SECTION("5: local I/O errors") {
        const auto r = ctl({"unwrap", "--in", work.file("missing.kcw"), "--out", work.file("k.bin"), "--socket", s});
        INFO(r.describe);
        CHECK(r.exit_code == 5);
        CHECK(r.err.find(work.file("missing.kcw")) != std::string::npos);
        const auto sign = ctl({"sign", "kek-1", "--alg", "ecdsa-sha256", "--data-file", work.file("nope"), "--socket", s});
        CHECK(sign.exit_code == 5);
    }
}

TEST_CASE("keychainctl --json output parses with the expected fields", "[integration]") {
    const auto p256 = make_identity(KeyKind::EcP256);
    nlohmann::json j = nlohmann::json::array();
    j.push_back({{"name", "kek-1"}, {"encodedKey", kKek1Hex}});
    j.push_back({{"name", "kek-2"}, {"encodedKey", kKek2Hex}});
    j.push_back({{"name", "web"}, {"privateKey", p256.key_pem_pkcs8}});
    KeysDaemon d(j.dump());
    const std::string s = d.socket();
    const std::string file = d.keys_dir + "/test.4DKeyChain";

    const auto r = ctl({"list", "--json", "--socket", s});
    INFO(r.describe);
    REQUIRE(r.exit_code == 0);
    const auto keys = nlohmann::json::parse(r.out);
    REQUIRE(keys.is_array());
    REQUIRE(keys.size() == 3);
    for (const auto& k : keys)
        for (const char* field : {"id", "label", "kind", "bits", "usages", "sources", "tethered", "present", "expires"})
            CHECK(k.contains(field));
    const auto* kek = find_key(keys, "label", "kek-1");
    REQUIRE(kek != nullptr);
    CHECK((*kek)["id"] == symmetric_id(unhex(kKek1Hex)));
    CHECK((*kek)["kind"] == "aes-256");
    CHECK((*kek)["bits"] == 256);
    CHECK((*kek)["usages"] == nlohmann::json::array({"wrap"}));
    CHECK((*kek)["sources"] == nlohmann::json::array({"file:" + file + "#0"}));
    CHECK((*kek)["tethered"] == false);
    CHECK((*kek)["present"] == true);
    CHECK((*kek)["expires"].is_null());
    const auto* web = find_key(keys, "label", "web");
    REQUIRE(web != nullptr);
    CHECK((*web)["id"] == hex(sha256(p256.spki_der)));
    CHECK((*web)["kind"] == "ec-p256");
    CHECK((*web)["usages"] == nlohmann::json::array({"sign"}));

    const auto st = ctl({"status", "--json", "--socket", s});
    REQUIRE(st.exit_code == 0);
    const auto sj = nlohmann::json::parse(st.out);
    CHECK(sj.at("keys") == 3);
    CHECK(sj.at("locked") == false);
    CHECK(sj.at("version").is_string());
    CHECK(sj.at("backend").is_string());

    // After FORGET, list --all --json shows the key as not present.
    const auto f = ctl({"forget", "kek-2", "--json", "--socket", s});
    REQUIRE(f.exit_code == 0);
    CHECK(nlohmann::json::parse(f.out).at("forgotten") == 1);
    const auto present = nlohmann::json::parse(ctl({"list", "--json", "--socket", s}).out);
    CHECK(present.size() == 2);
    CHECK(find_key(present, "label", "kek-2") == nullptr);
    const auto all = nlohmann::json::parse(ctl({"list", "--all", "--json", "--socket", s}).out);
    REQUIRE(all.size() == 3);
    const auto* gone = find_key(all, "label", "kek-2");
    REQUIRE(gone != nullptr);
    CHECK((*gone)["present"] == false);
}

TEST_CASE("keychainctl provide, lock and unlock (admin)", "[integration]") {
    KeysDaemon d(two_keks_json());
    TempDir work("keychainctl-test");
    const std::string s = d.socket();

    const std::string pass = "a passphrase from stdin";
    const auto p = ctl({"provide", "--passphrase-stdin", "--label", "stdin-key", "--socket", s}, with_stdin(pass + "\n"));
    INFO(p.describe);
    REQUIRE(p.exit_code == 0);
    const std::string id = symmetric_id(sha256(Bytes(pass.begin(), pass.end())));
    CHECK(p.out == id + "\n");
    const std::string enc_file = work.file("enc.txt");
    write_file_bytes(enc_file, Bytes(kKek1Hex, kKek1Hex + 64));
    const auto e = ctl({"provide", "--encoded-key-file", enc_file, "--label", "again", "--socket", s});
    INFO(e.describe);
    CHECK(e.exit_code == 0);
    CHECK(e.out == symmetric_id(unhex(kKek1Hex)) + "\n");

    const auto lock = ctl({"lock", "--password-stdin", "--socket", s}, with_stdin("pw\n"));
    INFO(lock.describe);
    REQUIRE(lock.exit_code == 0);
    CHECK(lock.out == "locked\n");
    const auto locked = ctl({"gen-datakey", "stdin-key", "--out-wrapped", work.file("l.kcw"), "--socket", s});
    CHECK(locked.exit_code == 3);
    CHECK(std::regex_match(locked.err, std::regex("keychainctl: LOCKED: [^\n]+\n")));
    const auto wrong = ctl({"unlock", "--password-stdin", "--socket", s}, with_stdin("nope\n"));
    CHECK(wrong.exit_code == 3);
    CHECK(std::regex_match(wrong.err, std::regex("keychainctl: DENIED: [^\n]+\n")));
    CHECK(wrong.err.find("nope") == std::string::npos);
    const auto unlock = ctl({"unlock", "--password-stdin", "--socket", s}, with_stdin("pw\n"));
    INFO(unlock.describe);
    CHECK(unlock.exit_code == 0);
    CHECK(ctl({"gen-datakey", "stdin-key", "--out-wrapped", work.file("u.kcw"), "--socket", s}).exit_code == 0);
    CHECK(hex(read_file_bytes(work.file("u.kcw")).data() + 4, 16) == id);
}

namespace {

// An Ed25519 key as `openssl genpkey -algorithm ed25519` writes it, and its SPKI.
std::pair<std::string, Bytes> new_ed25519_key() {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"),
                                                              EVP_PKEY_free);
    REQUIRE(pkey != nullptr);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    REQUIRE(PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
    char* text = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &text);
    Bytes spki(static_cast<size_t>(i2d_PUBKEY(pkey.get(), nullptr)));
    unsigned char* p = spki.data();
    REQUIRE(i2d_PUBKEY(pkey.get(), &p) == static_cast<int>(spki.size()));
    return {std::string(text, static_cast<size_t>(n)), spki};
}

// With OpenSSL's EVP directly, not through keychaind's backend.
bool ed25519_signature_verifies(const Bytes& spki, const Bytes& message, const Bytes& sig) {
    const unsigned char* p = spki.data();
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pub(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())),
                                                             EVP_PKEY_free);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    return pub && EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, pub.get(), nullptr) == 1 &&
           EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), message.data(), message.size()) == 1;
}

}  // namespace

TEST_CASE("keychainctl sign --alg ed25519 sends the message itself, from --data-file or --in",
          "[integration][ed25519]") {
    const auto [pem, spki] = new_ed25519_key();
    nlohmann::json j = nlohmann::json::array({{{"name", "ed"}, {"privateKey", pem}}});
    KeysDaemon d(j.dump());
    auto status = request(d.socket(), req(keychaind::wire::Opcode::Status));
    const auto backend = status.msg.get_string(keychaind::wire::Tag::Backend).value_or("");
    INFO("daemon backend " << backend);
    TempDir work("keychainctl-test");
    const std::string s = d.socket();
    const std::string text = "a release manifest, signed whole: Ed25519 hashes inside the signature\n";
    const Bytes message(text.begin(), text.end());
    const std::string msg_file = work.file("manifest.txt");
    write_file_bytes(msg_file, message);

    // Refused before the daemon is asked, whatever its backend.
    CHECK(ctl({"sign", "ed", "--alg", "ed25519", "--digest-hex", "00112233", "--socket", s}).exit_code == 1);
    CHECK(ctl({"sign", "ed", "--alg", "ed25519", "--socket", s}).exit_code == 1);
    const std::string big_file = work.file("big.bin");
    write_file_bytes(big_file, Bytes(16 * 1024 + 1, 0x61));
    const auto big = ctl({"sign", "ed", "--alg", "ed25519", "--data-file", big_file, "--socket", s});
    CHECK(big.exit_code == 5);
    CHECK(big.err.find("16384") != std::string::npos);

    if (backend.rfind("mbedtls", 0) == 0) {
        // KEYCHAIND_CRYPTO_BACKEND=mbedtls refuses the key: there is nothing to sign with.
        CHECK(ctl({"sign", "ed", "--alg", "ed25519", "--data-file", msg_file, "--socket", s}).exit_code == 3);
        return;
    }
    const auto r = ctl({"sign", "ed", "--alg", "ed25519", "--data-file", msg_file, "--socket", s});
    INFO(r.describe);
    REQUIRE(r.exit_code == 0);
    const Bytes sig = unbase64(r.out);
    CHECK(sig.size() == 64);
    CHECK(ed25519_signature_verifies(spki, message, sig));
    CHECK_FALSE(ed25519_signature_verifies(spki, Bytes(message.begin() + 1, message.end()), sig));

    RunOptions from_stdin = env_socket(s);
    from_stdin.stdin_data = text;
    const auto piped = ctl({"sign", "ed", "--alg", "ed25519", "--in", "-", "--json"}, from_stdin);
    INFO(piped.describe);
    REQUIRE(piped.exit_code == 0);
    const auto pj = nlohmann::json::parse(piped.out);
    CHECK(pj.at("algorithm") == "ed25519");
    CHECK(unbase64(pj.at("signature").get<std::string>()) == sig);  // deterministic

    // The key is not ECDSA's: the daemon answers UNSUPPORTED.
    CHECK(ctl({"sign", "ed", "--alg", "ecdsa-sha256", "--data-file", msg_file, "--socket", s}).exit_code == 3);

    // docs/client.md's example: the openssl command verifies what keychainctl signed.
    const std::string sig_file = work.file("manifest.sig");
    const std::string pub_file = work.file("ed.pub.pem");
    REQUIRE(ctl({"sign", "ed", "--alg", "ed25519", "--data-file", msg_file, "--out", sig_file, "--socket", s})
                .exit_code == 0);
    REQUIRE(ctl({"public", "ed", "--out-key", pub_file, "--socket", s}).exit_code == 0);
    const auto verified = run("openssl", {"pkeyutl", "-verify", "-pubin", "-inkey", pub_file, "-rawin", "-in",
                                          msg_file, "-sigfile", sig_file});
    INFO(verified.describe);
    CHECK(verified.exit_code == 0);
    CHECK(verified.out.find("Signature Verified Successfully") != std::string::npos);
}
