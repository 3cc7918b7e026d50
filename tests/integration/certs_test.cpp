// Integration: keychainctl csr (a PKCS#10 request signed by a key the daemon holds) and keychainctl
// keygen (a new TLS identity as a .4DKeyChain file), checked with openssl and a real keychaind.
#include <mbedtls/base64.h>
#include <p11-kit/pkcs11.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "child_process.h"
#include "core/key_id.h"
#include "daemon_fixture.h"
#include "keychain/client.hpp"
#include "soft_token.h"
#include "test_bytes.h"
#include "test_keys.h"

#ifndef KEYCHAINCTL_BINARY
#error "KEYCHAINCTL_BINARY must name the built keychainctl"
#endif

using namespace keychaind::test;
using keychaind::KeyKind;

namespace {

unsigned mode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

// PEM as OpenSSL writes it (64-character lines), to compare with its output.
std::string pem(const std::string& label, const std::vector<uint8_t>& der) {
    size_t olen = 0;
    mbedtls_base64_encode(nullptr, 0, &olen, der.data(), der.size());
    std::string b64(olen, '\0');
    REQUIRE(mbedtls_base64_encode(reinterpret_cast<unsigned char*>(b64.data()), b64.size(), &olen,
                                  der.data(), der.size()) == 0);
    b64.resize(olen);
    std::string out = "-----BEGIN " + label + "-----\n";
    for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
    return out + "-----END " + label + "-----\n";
}

ProcessResult ctl(std::vector<std::string> args) {
    args.insert(args.begin(), KEYCHAINCTL_BINARY);
    return run_process(
        args, {std::nullopt, std::chrono::seconds(120), {}});  // RSA-3072 generation takes a while
}

ProcessResult openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
}

constexpr const char* kSubject = "CN=www.example.com,O=Example Org,C=FR";

}  // namespace

TEST_CASE(
    "keychainctl csr for daemon-held EC P-256 and RSA-2048 keys verifies and carries the subject "
    "and SANs",
    "[integration][certs]") {
    const TestIdentity ec = make_identity(KeyKind::EcP256, 0, "ec");
    const TestIdentity rsa = make_identity(KeyKind::Rsa, 2048, "rsa");
    KeysDaemon d(
        nlohmann::json::array({identity_entry(ec, "web-ec"), identity_entry(rsa, "web-rsa")})
            .dump());

    // The private keys exist only inside the daemon from here on: their file is gone, so the csr
    // step below cannot read them even if it tried; every signature is a SIGN request.
    const std::string key_file = d.keys_dir + "/test.4DKeyChain";
    std::filesystem::remove(key_file);
    REQUIRE_FALSE(std::filesystem::exists(key_file));
    keychain::Client kc(d.socket());
    REQUIRE(kc.list_keys().size() == 2);

    struct Case {
        std::string key;
        const TestIdentity* id;
        std::string signature_algorithm;
    };
    for (const Case& c : {Case{"web-ec", &ec, "ecdsa-with-SHA256"},
                          Case{"web-rsa", &rsa, "sha256WithRSAEncryption"}}) {
        INFO("key " << c.key);
        const std::string out = d.dir.file(c.key + ".csr");
        const auto r = ctl({"csr", "--socket", d.socket(), "--key", c.key, "--subject", kSubject,
                            "--san", "DNS:www.example.com", "--san", "DNS:example.com", "--san",
                            "IP:192.0.2.10", "--out", out});
        INFO(r.describe);
        REQUIRE(r.exit_code == 0);
        CHECK(r.out.empty());
        CHECK(read_file_text(out).rfind("-----BEGIN CERTIFICATE REQUEST-----\n", 0) == 0);

        const auto verify = openssl({"req", "-in", out, "-verify", "-noout"});
        INFO(verify.describe);
        CHECK(verify.exit_code == 0);
        CHECK(verify.all().find("verify OK") != std::string::npos);

        const auto subject = openssl({"req", "-in", out, "-noout", "-subject"});
        INFO(subject.describe);
        CHECK(subject.out == "subject=CN = www.example.com, O = Example Org, C = FR\n");

        const auto text = openssl({"req", "-in", out, "-noout", "-text"});
        INFO(text.describe);
        CHECK(text.out.find("X509v3 Subject Alternative Name") != std::string::npos);
        CHECK(text.out.find("DNS:www.example.com, DNS:example.com, IP Address:192.0.2.10") !=
              std::string::npos);
        CHECK(text.out.find("Signature Algorithm: " + c.signature_algorithm) != std::string::npos);

        // The request is for the daemon's key: its public key is the identity's.
        const auto pub = openssl({"req", "-in", out, "-noout", "-pubkey"});
        INFO(pub.describe);
        CHECK(pub.out == pem("PUBLIC KEY", c.id->spki_der));
    }

    SECTION("without --out the PEM goes to standard output, and --json names the key") {
        const auto r =
            ctl({"csr", "--socket", d.socket(), "--key", "web-ec", "--subject", "CN=plain"});
        INFO(r.describe);
        REQUIRE(r.exit_code == 0);
        CHECK(r.out.rfind("-----BEGIN CERTIFICATE REQUEST-----\n", 0) == 0);
        const auto j = ctl(
            {"csr", "--socket", d.socket(), "--key", "web-ec", "--subject", "CN=plain", "--json"});
        INFO(j.describe);
        REQUIRE(j.exit_code == 0);
        const auto parsed = nlohmann::json::parse(j.out);
        CHECK(parsed.at("key_id") == keychaind::KeyId::for_public_key(ec.spki_der).hex());
        CHECK(parsed.at("csr_pem").get<std::string>().rfind("-----BEGIN CERTIFICATE REQUEST-----",
                                                            0) == 0);
    }
}

TEST_CASE("keychainctl csr refuses what it cannot sign or write, with the documented exit codes",
          "[integration][certs]") {
    const TestIdentity ec = make_identity(KeyKind::EcP256, 0, "ec");
    nlohmann::json entries = nlohmann::json::array(
        {identity_entry(ec, "web-ec"),
         {{"name", "a-kek"},
          {"encodedKey", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"}}});
    KeysDaemon d(entries.dump());
    const auto csr = [&](const std::string& key, const std::string& subject,
                         const std::string& san) {
        std::vector<std::string> a = {"csr", "--socket",  d.socket(), "--key",
                                      key,   "--subject", subject};
        if (!san.empty()) a.insert(a.end(), {"--san", san});
        return ctl(a);
    };
    const auto aes = csr("a-kek", "CN=x", "");
    INFO(aes.describe);
    CHECK(aes.exit_code == 3);
    CHECK(aes.err.find("UNSUPPORTED") != std::string::npos);
    const auto missing = csr("nobody", "CN=x", "");
    CHECK(missing.exit_code == 3);
    CHECK(missing.err.find("NO_SUCH_KEY") != std::string::npos);
    const auto bad_subject = csr("web-ec", "XYZ=1", "");
    INFO(bad_subject.describe);
    CHECK(bad_subject.exit_code == 1);
    CHECK(bad_subject.err.find("--subject \"XYZ=1\"") != std::string::npos);
    const auto bad_san = csr("web-ec", "CN=x", "DNS:bad name");
    CHECK(bad_san.exit_code == 1);
    CHECK(bad_san.err.find("not a DNS name") != std::string::npos);
    const auto bad_type = csr("web-ec", "CN=x", "RID:1.2.3");
    CHECK(bad_type.exit_code == 1);
    CHECK(bad_type.err.find("unknown type RID") != std::string::npos);
}

TEST_CASE(
    "keychainctl keygen writes a 0600 .4DKeyChain identity the daemon loads with its kind and size",
    "[integration][certs]") {
    struct Case {
        std::string type;
        int kind;
        uint32_t bits;
        bool self_signed;
        std::string pem_label;
    };
    const Case c = GENERATE(Case{"rsa:3072", KC_KIND_RSA, 3072, false, "RSA PRIVATE KEY"},
                            Case{"rsa:3072", KC_KIND_RSA, 3072, true, "RSA PRIVATE KEY"},
                            Case{"ec:p256", KC_KIND_EC_P256, 256, false, "EC PRIVATE KEY"},
                            Case{"ec:p256", KC_KIND_EC_P256, 256, true, "EC PRIVATE KEY"});
    INFO("--type " << c.type << (c.self_signed ? " --self-signed" : ""));
    KeysDaemon d("");
    const std::string name = "gen-" + std::string(c.kind == KC_KIND_RSA ? "rsa" : "ec");
    const std::string path = d.keys_dir + "/" + name + ".4DKeyChain";
    std::vector<std::string> args = {"keygen", "--type", c.type, "--out", path, "--name", name};
    if (c.self_signed)
        args.insert(args.end(),
                    {"--self-signed", "--san", "DNS:localhost", "--san", "IP:127.0.0.1"});
    const auto made = ctl(args);
    INFO(made.describe);
    REQUIRE(made.exit_code == 0);
    CHECK(made.err.empty());
    REQUIRE(std::regex_match(made.out, std::regex("[0-9a-f]{64}\n")));
    const std::string id = made.out.substr(0, 64);
    CHECK(mode_of(path) == 0600);

    const std::string content = read_file_text(path);
    const auto entry = nlohmann::json::parse(content);
    REQUIRE(entry.is_object());
    CHECK(entry.at("name") == name);
    CHECK(entry.at("privateKey")
              .get<std::string>()
              .rfind("-----BEGIN " + c.pem_label + "-----\n", 0) == 0);
    CHECK(entry.contains("certificate") == c.self_signed);

    // The daemon loads it on DISCOVER, as an identity of the right kind and size.
    const auto disc = ctl({"discover", "--socket", d.socket()});
    INFO(disc.describe);
    CHECK(disc.out == "1 new key\n");
    keychain::Client kc(d.socket());
    const auto keys = kc.list_keys();
    REQUIRE(keys.size() == 1);
    CHECK(keys[0].id == id);
    CHECK(keys[0].label == name);
    CHECK(keys[0].kind == c.kind);
    CHECK(keys[0].bits == c.bits);
    CHECK((keys[0].usages & KC_USAGE_SIGN) != 0);
    const auto pub = kc.get_public(id);
    CHECK(keychaind::KeyId::for_public_key(pub.spki).hex() == id);
    REQUIRE(pub.certificates.size() == (c.self_signed ? 1u : 0u));

    if (c.self_signed) {
        const std::string cert = d.dir.file("cert.pem");
        write_file(cert, entry.at("certificate").get<std::string>());
        const auto verify = openssl({"verify", "-CAfile", cert, cert});
        INFO(verify.describe);
        CHECK(verify.exit_code == 0);
        CHECK(verify.out == cert + ": OK\n");
        // The certificate is for the key: its public key is the daemon's, and the daemon, which
        // checks that the leaf belongs to the private key, loaded the pair.
        const auto cert_pub = openssl({"x509", "-in", cert, "-noout", "-pubkey"});
        CHECK(cert_pub.out == pem("PUBLIC KEY", pub.spki));
        const std::string key = d.dir.file("key.pem");
        write_file(key, entry.at("privateKey").get<std::string>());
        const auto key_pub = openssl({"pkey", "-in", key, "-pubout"});
        INFO(key_pub.describe);
        CHECK(key_pub.out == cert_pub.out);
        const auto text = openssl(
            {"x509", "-in", cert, "-noout", "-subject", "-ext", "subjectAltName,basicConstraints"});
        INFO(text.describe);
        CHECK(text.out.find("subject=CN = " + name) != std::string::npos);
        CHECK(text.out.find("DNS:localhost, IP Address:127.0.0.1") != std::string::npos);
        CHECK(text.out.find("CA:FALSE") != std::string::npos);
    }

    SECTION("keygen never overwrites a file") {
        const auto again = ctl({"keygen", "--type", "ec:p256", "--out", path});
        INFO(again.describe);
        CHECK(again.exit_code == 5);
        CHECK(read_file_text(path) == content);
    }
}

TEST_CASE(
    "keychainctl keygen --token generates non-extractable keys in a token, which the daemon serves",
    "[integration][certs][token]") {
    SoftToken::Options opts;
    opts.import_keys = false;  // an empty token: every key on it comes from keygen
    SoftToken token(opts);
    const std::string lsan_suppressions = token.dir() + "/lsan.supp";
    write_file(lsan_suppressions, "leak:libsofthsm2.so\nleak:libcrypto.so\n");
    const auto keygen = [&](const std::vector<std::string>& extra, const std::string& pin) {
        std::vector<std::string> argv = {KEYCHAINCTL_BINARY, "keygen",   "--token",    token.uri(),
                                         "--module",         "softhsm2", "--pin-stdin"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        ProcessOptions o;
        o.stdin_data = pin + "\n";
        o.timeout = std::chrono::seconds(120);
        // keychainctl loads SoftHSM2 here; under the sanitizer build, what SoftHSM2 and its OpenSSL
        // keep until exit is theirs (as for this test process: soft_token.cpp).
        o.env = {"LSAN_OPTIONS=suppressions=" + lsan_suppressions};
        return run_process(argv, o);
    };

    const auto wrong = keygen({"--type", "ec:p256", "--name", "nope"}, "0000");
    INFO(wrong.describe);
    CHECK(wrong.exit_code == 3);
    CHECK(wrong.err.find("the PIN is wrong") != std::string::npos);

    const auto ec =
        keygen({"--type", "ec:p256", "--name", "tok-ec", "--self-signed", "--san", "DNS:localhost"},
               token.pin());
    INFO(ec.describe);
    REQUIRE(ec.exit_code == 0);
    REQUIRE(std::regex_match(ec.out, std::regex("[0-9a-f]{64}\n")));
    const auto rsa = keygen({"--type", "rsa:3072", "--name", "tok-rsa", "--json"}, token.pin());
    INFO(rsa.describe);
    REQUIRE(rsa.exit_code == 0);
    const auto rsa_json = nlohmann::json::parse(rsa.out);
    CHECK(rsa_json.at("token_key").get<std::string>().find("object=tok-rsa") != std::string::npos);

    // C_GenerateKeyPair made them inside: sensitive since birth, never extractable.
    for (const char* label : {"tok-ec", "tok-rsa"}) {
        INFO(label);
        const auto p = token.key_protection(CKO_PRIVATE_KEY, label);
        CHECK(p.sensitive);
        CHECK_FALSE(p.extractable);
        CHECK(p.always_sensitive);
        CHECK(p.never_extractable);
    }
    CHECK_THROWS(token.key_protection(CKO_PRIVATE_KEY, "nope"));

    // The daemon finds both through its token driver, with their kinds, sizes and ids.
    TempDir dir("keychaind-certs-token");
    const std::string pin_file = dir.file("web.pin");
    write_file(pin_file, token.pin());  // root-owned (the tests run as root), mode 0600
    DaemonProcess daemon(
        dir.path(),
        "[pkcs11]\npoll_ms = 300\n\n[[pkcs11.token]]\nname = \"web\"\nmodule = \"softhsm2\"\n"
        "uri = \"" +
            token.uri() + "\"\npin_file = \"" + pin_file + "\"\n");
    keychain::Client kc(daemon.socket_path());
    kc.set_timeout(20000);
    const std::string ec_id = ec.out.substr(0, 64);
    const std::string rsa_id = rsa_json.at("key_id");
    const auto ec_info = kc.wait(ec_id, 10000);
    CHECK(ec_info.kind == KC_KIND_EC_P256);
    CHECK(ec_info.bits == 256);
    CHECK(ec_info.label == "tok-ec");
    const auto rsa_info = kc.wait(rsa_id, 10000);
    CHECK(rsa_info.kind == KC_KIND_RSA);
    CHECK(rsa_info.bits == 3072);

    // The self-signed certificate, signed by the token, sits beside the key and verifies.
    const auto pub = kc.get_public(ec_id);
    REQUIRE(pub.certificates.size() == 1);
    const std::string cert = dir.file("tok-ec.pem");
    write_file(cert, pem("CERTIFICATE", pub.certificates[0]));
    const auto verify = openssl({"verify", "-CAfile", cert, cert});
    INFO(verify.describe);
    CHECK(verify.exit_code == 0);
    CHECK(openssl({"x509", "-in", cert, "-noout", "-pubkey"}).out == pem("PUBLIC KEY", pub.spki));
    CHECK(kc.get_public(rsa_id).certificates.empty());

    // And the token key signs a request through the daemon.
    const std::string csr = dir.file("tok-rsa.csr");
    const auto r = ctl({"csr", "--socket", daemon.socket_path(), "--key", rsa_id, "--subject",
                        "CN=token.example", "--out", csr});
    INFO(r.describe);
    REQUIRE(r.exit_code == 0);
    CHECK(openssl({"req", "-in", csr, "-verify", "-noout"}).exit_code == 0);
}
