// Real PKCS#11 clients against the module and a real daemon: p11tool and gnutls-serv/-cli
// (GnuTLS through p11-kit), pkcs11-tool (OpenSC). Installed from Debian's gnutls-bin and opensc.
// The keys come from a .4DKeyChain file, or from a SoftHSM2 token behind the daemon.
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <regex>

#include "external_tools.h"
#include "pkcs11_fixture.h"

using namespace keychaind::test;

namespace {

size_t occurrences(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++n;
    return n;
}

// The tools load the module themselves: they find the daemon through the environment.
struct ToolEnvironment {
    std::unique_ptr<KeychainDaemon> owned;
    KeychainDaemon& daemon;
    std::string module = LoadedModule::path();
    ToolEnvironment() : ToolEnvironment(std::make_unique<KeychainDaemon>()) {}
    explicit ToolEnvironment(const SoftToken& token)
        : ToolEnvironment(std::make_unique<KeychainDaemon>(token)) {}
    explicit ToolEnvironment(std::unique_ptr<KeychainDaemon> d)
        : owned(std::move(d)), daemon(*owned) {
        setenv("KEYCHAIND_SOCKET", daemon.socket().c_str(), 1);
        const std::string empty = daemon.dir() + "/pkcs11.conf";
        std::ofstream(empty).close();
        setenv("KEYCHAIND_PKCS11_CONFIG", empty.c_str(), 1);
    }
    std::string file(const std::string& name) const { return daemon.dir() + "/" + name; }
};

// A token whose certificates name localhost, the host the TLS clients connect to.
SoftToken::Options localhost_token() {
    SoftToken::Options o;
    o.common_name = "localhost";
    return o;
}

// `p11tool --list-all` of the module's token: `objects` objects, and for each label a private
// key, a public key and a certificate.
ToolResult p11tool_list_all(const ToolEnvironment& env, long objects,
                            const std::vector<std::string>& labels) {
    ToolResult r =
        run_tool({"p11tool", "--provider", env.module, "--list-all", "pkcs11:token=keychaind"});
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    const std::regex object_line("(^|\n)Object [0-9]+:");
    CHECK(std::distance(std::sregex_iterator(r.output.begin(), r.output.end(), object_line),
                        std::sregex_iterator()) == objects);
    for (const std::string& label : labels) {
        for (const char* type : {"private", "public", "cert"})
            CHECK(r.output.find("object=" + label + ";type=" + type) != std::string::npos);
    }
    return r;
}

// A key pkcs11-tool signs with (`--sign --id`), verified with mbedTLS.
struct SignCase {
    const TestIdentity* id;
    const char* mechanism;
};

void check_pkcs11_tool_signs(const ToolEnvironment& env, const std::vector<SignCase>& cases) {
    const std::string data = env.file("data.bin");
    std::ofstream(data) << "signed by pkcs11-tool through keychaind";
    const Bytes hash = sha256(read_file_bytes(data));
    for (const SignCase& c : cases) {
        const std::string sig_path = env.file(std::string(c.mechanism) + ".sig");
        // pkcs11-tool 0.23 picks the signing key by CKA_ID only.
        const ToolResult r = run_tool({"pkcs11-tool", "--module", env.module, "--sign", "--id",
                                       hex(sha256(c.id->spki_der)), "--mechanism", c.mechanism,
                                       "--input-file", data, "--output-file", sig_path});
        INFO(c.mechanism << "\n" << r.output);
        REQUIRE(r.exit_code == 0);
        const Bytes sig = read_file_bytes(sig_path);
        const std::string mechanism = c.mechanism;
        if (mechanism.rfind("ECDSA", 0) == 0) {
            CHECK(ecdsa_verifies(c.id->spki_der, hash, sig));
        } else if (mechanism.find("PSS") != std::string::npos) {
            CHECK(rsa_pss_verifies(c.id->spki_der, Hash::Sha256, hash, sig));
        } else {
            CHECK(rsa_pkcs1_verifies(c.id->spki_der, Hash::Sha256, hash, sig));
        }
    }
}

// `pkcs11-tool --test` runs its signature and decryption tests only when logged in: any PIN does.
void check_pkcs11_tool_test(const ToolEnvironment& env) {
    const ToolResult test =
        run_tool({"pkcs11-tool", "--module", env.module, "--test", "--login", "--pin", "0000"});
    INFO(test.output);
    CHECK(test.exit_code == 0);
    CHECK(test.output.find("No errors") != std::string::npos);
    CHECK(test.output.find("all 4 signature functions seem to work") != std::string::npos);
    CHECK(test.output.find("RSA-PKCS: OK") != std::string::npos);
    CHECK(test.output.find("SHA256-RSA-PKCS: OK") != std::string::npos);
    CHECK(test.output.find("RSA-PKCS-OAEP") != std::string::npos);
    WARN("pkcs11-tool --test --login:\n" << test.output);
}

struct TlsCase {
    const char* label;
    const TestIdentity* id;
    bool cert_from_token;  // the certificate by pkcs11: URI, or from a PEM file
    const char* version;
    const char* signature;  // what gnutls-cli's session description must show
};

// gnutls-serv with each key (by pkcs11: URI) against gnutls-cli, which checks the chain.
void check_gnutls_handshakes(const ToolEnvironment& env, const std::vector<TlsCase>& cases) {
    for (const TlsCase& c : cases) {
        const std::string ca = env.file(std::string(c.label) + ".pem");
        std::ofstream(ca) << c.id->cert_pem;
        const std::string key_uri =
            std::string("pkcs11:token=keychaind;object=") + c.label + ";type=private";
        const std::string cert = c.cert_from_token ? std::string("pkcs11:token=keychaind;object=") +
                                                         c.label + ";type=cert"
                                                   : ca;
        const int port = free_tcp_port();
        BackgroundTool server({"gnutls-serv", "--provider", env.module, "--x509keyfile", key_uri,
                               "--x509certfile", cert, "-p", std::to_string(port)},
                              env.file("gnutls-serv.log"));
        INFO(c.label << " " << c.version
                     << (c.cert_from_token ? " (certificate from the token)"
                                           : " (PEM certificate)"));
        REQUIRE(wait_for_tcp_port(port, std::chrono::seconds(15)));
        // The server's certificate is checked against the PEM copy (CN=localhost): a real chain
        // check.
        const ToolResult r = run_tool({"gnutls-cli", "--x509cafile", ca, "--priority",
                                       std::string("NORMAL:-VERS-ALL:+VERS-") + c.version, "-p",
                                       std::to_string(port), "localhost"},
                                      std::chrono::seconds(30));
        INFO(r.output << "\nserver log:\n" << server.log());
        CHECK(r.exit_code == 0);
        CHECK(r.output.find("- Handshake was completed") != std::string::npos);
        CHECK(r.output.find(std::string("(") + c.version + "-X.509)") != std::string::npos);
        CHECK(r.output.find(c.signature) != std::string::npos);
        CHECK(r.output.find("Status: The certificate is trusted.") != std::string::npos);
        std::smatch description;
        const std::string out = r.output;
        std::regex_search(out, description, std::regex("- Description: [^\\n]*"));
        WARN(
            c.label << " " << c.version << ": gnutls-cli ran " << r.elapsed.count() << " ms; "
                    << (description.empty() ? std::string("(no description)") : description.str()));
    }
}

}  // namespace

TEST_CASE("p11tool --list-all shows every key, public key and certificate") {
    require_tool("p11tool", "gnutls-bin");
    ToolEnvironment env;
    const ToolResult tokens = run_tool({"p11tool", "--provider", env.module, "--list-tokens"});
    INFO(tokens.output);
    REQUIRE(tokens.exit_code == 0);
    CHECK(tokens.output.find("Label: keychaind") != std::string::npos);

    const ToolResult r = p11tool_list_all(env, 10, {"web-ec", "web-rsa", "web-chain"});
    INFO(r.output);
    CHECK(r.output.find("object=web-chain%20chain%201;type=cert") != std::string::npos);
    CHECK(occurrences(r.output, "Type: Private key (EC/ECDSA-SECP256R1)") == 1);
    CHECK(occurrences(r.output, "Type: Private key (EC/ECDSA-SECP384R1)") == 1);
    CHECK(occurrences(r.output, "Type: Private key (RSA-2048)") == 1);
    CHECK(occurrences(r.output, "Type: X.509 Certificate") == 4);
    CHECK(occurrences(r.output, "CKA_NEVER_EXTRACTABLE; CKA_SENSITIVE;") == 3);
    CHECK(r.output.find("kek") == std::string::npos);
    WARN("p11tool --list-all:\n" << r.output);
}

TEST_CASE("pkcs11-tool lists the objects, passes --test, and signs with EC and RSA-PSS keys") {
    require_tool("pkcs11-tool", "opensc");
    ToolEnvironment env;
    const ToolResult objects = run_tool({"pkcs11-tool", "--module", env.module, "-O"});
    INFO(objects.output);
    REQUIRE(objects.exit_code == 0);
    CHECK(occurrences(objects.output, "Private Key Object; EC") == 2);
    CHECK(occurrences(objects.output, "Private Key Object; RSA") == 1);
    CHECK(occurrences(objects.output, "Public Key Object;") == 3);
    CHECK(occurrences(objects.output, "Certificate Object;") == 4);
    CHECK(occurrences(objects.output,
                      "Access:     sensitive, always sensitive, never extractable") == 3);
    CHECK(objects.output.find("ID:         " + hex(sha256(test_keychain().rsa.spki_der))) !=
          std::string::npos);
    WARN("pkcs11-tool -O:\n" << objects.output);

    check_pkcs11_tool_test(env);
    const TestKeychain& k = test_keychain();
    check_pkcs11_tool_signs(
        env,
        {{&k.ec, "ECDSA-SHA256"}, {&k.rsa, "SHA256-RSA-PKCS-PSS"}, {&k.rsa, "SHA256-RSA-PKCS"}});
}

TEST_CASE(
    "gnutls-serv with the module's keys completes TLS 1.3 and TLS 1.2 handshakes with gnutls-cli") {
    require_tool("gnutls-serv", "gnutls-bin");
    require_tool("gnutls-cli", "gnutls-bin");
    ToolEnvironment env;
    const TestKeychain& k = test_keychain();
    check_gnutls_handshakes(env, {
                                     {"web-ec", &k.ec, true, "TLS1.3", "(ECDSA-SECP256R1-SHA256)"},
                                     {"web-ec", &k.ec, true, "TLS1.2", "(ECDSA-SHA256)"},
                                     {"web-ec", &k.ec, false, "TLS1.3", "(ECDSA-SECP256R1-SHA256)"},
                                     // TLS 1.3 signs with RSA-PSS only
                                     {"web-rsa", &k.rsa, true, "TLS1.3", "(RSA-PSS-RSAE-SHA256)"},
                                     {"web-rsa", &k.rsa, true, "TLS1.2", "(RSA-SHA256)"},
                                     {"web-rsa", &k.rsa, false, "TLS1.2", "(RSA-SHA256)"},
                                 });
}

TEST_CASE("a SoftHSM2 token's keys behind the daemon: p11tool and pkcs11-tool list and use them") {
    require_tool("p11tool", "gnutls-bin");
    require_tool("pkcs11-tool", "opensc");
    SoftToken token(localhost_token());
    ToolEnvironment env(token);

    // A private key, its public key and its certificate for each key pair; the token's AES key
    // has no object here.
    const ToolResult r = p11tool_list_all(env, 6, {SoftToken::kEcLabel, SoftToken::kRsaLabel});
    INFO(r.output);
    CHECK(occurrences(r.output, "Type: Private key (EC/ECDSA-SECP256R1)") == 1);
    CHECK(occurrences(r.output, "Type: Private key (RSA-2048)") == 1);
    CHECK(occurrences(r.output, "Type: X.509 Certificate") == 2);
    CHECK(occurrences(r.output, "CKA_NEVER_EXTRACTABLE; CKA_SENSITIVE;") == 2);
    CHECK(r.output.find(SoftToken::kAesLabel) == std::string::npos);

    const ToolResult objects = run_tool({"pkcs11-tool", "--module", env.module, "-O"});
    INFO(objects.output);
    REQUIRE(objects.exit_code == 0);
    CHECK(occurrences(objects.output, "Private Key Object; EC") == 1);
    CHECK(occurrences(objects.output, "Private Key Object; RSA") == 1);
    CHECK(occurrences(objects.output, "Certificate Object;") == 2);
    // CKA_ID is the daemon's key id (SHA-256 of the public key), not the token's own CKA_ID.
    CHECK(objects.output.find("ID:         " + token.ec_key_id()) != std::string::npos);
    CHECK(objects.output.find("ID:         " + token.rsa_key_id()) != std::string::npos);

    check_pkcs11_tool_test(env);
    check_pkcs11_tool_signs(env, {{&token.ec(), "ECDSA-SHA256"},
                                  {&token.rsa(), "SHA256-RSA-PKCS-PSS"},
                                  {&token.rsa(), "SHA256-RSA-PKCS"}});
}

TEST_CASE("gnutls-serv with a SoftHSM2 token's keys behind the daemon completes TLS 1.3 and 1.2") {
    require_tool("gnutls-serv", "gnutls-bin");
    require_tool("gnutls-cli", "gnutls-bin");
    SoftToken token(localhost_token());
    ToolEnvironment env(token);
    check_gnutls_handshakes(
        env, {
                 {SoftToken::kEcLabel, &token.ec(), true, "TLS1.3", "(ECDSA-SECP256R1-SHA256)"},
                 {SoftToken::kEcLabel, &token.ec(), true, "TLS1.2", "(ECDSA-SHA256)"},
                 {SoftToken::kRsaLabel, &token.rsa(), true, "TLS1.3", "(RSA-PSS-RSAE-SHA256)"},
                 {SoftToken::kRsaLabel, &token.rsa(), true, "TLS1.2", "(RSA-SHA256)"},
             });
}
