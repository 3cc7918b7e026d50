// Integration: examples/tls-server against a real keychaind, with real clients (curl, openssl
// s_client). The server holds no private key: its RSA signatures go through the daemon's SIGN
// (mbedTLS RSA-alt), its EC signatures through a delegated mbedTLS key type.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "core/key_id.h"
#include "daemon_fixture.h"
#include "keychain/client.hpp"
#include "test_keys.h"

#ifndef KEYCHAIN_TLS_SERVER_BINARY
#error "KEYCHAIN_TLS_SERVER_BINARY must name the built keychain-tls-server"
#endif

using namespace keychaind::test;
using keychaind::KeyKind;
using namespace std::chrono_literals;

namespace {

// A daemon holding `entries` in keys/test.4DKeyChain, and the CA file a client trusts (the
// first identity's self-signed certificate).
struct Setup {
    std::unique_ptr<KeysDaemon> daemon;
    std::string ca_file;
    Setup(const nlohmann::json& entries, const std::string& cert_pem) {
        daemon = std::make_unique<KeysDaemon>(entries.dump());
        ca_file = daemon->dir.file("ca.pem");
        write_file(ca_file, cert_pem);
    }
    std::string file(const std::string& name) const { return daemon->dir.file(name); }
};

uint16_t port_from_log(const std::string& log, const std::string& scheme) {
    std::smatch m;
    if (!std::regex_search(log, m, std::regex("listening " + scheme + " 127\\.0\\.0\\.1:([0-9]+)")))
        return 0;
    return static_cast<uint16_t>(std::stoi(m[1].str()));
}

// keychain-tls-server on 127.0.0.1, ports picked by the kernel and read from its log.
struct TlsServer {
    std::unique_ptr<BackgroundProcess> process;
    uint16_t https_port = 0;
    uint16_t http_port = 0;

    TlsServer(const Setup& s, const std::string& key, std::vector<std::string> extra = {}) {
        std::vector<std::string> argv = {KEYCHAIN_TLS_SERVER_BINARY,
                                         "--socket",
                                         s.daemon->socket(),
                                         "--key",
                                         key,
                                         "--listen",
                                         "127.0.0.1",
                                         "--https-port",
                                         "0"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        process = std::make_unique<BackgroundProcess>(
            argv, s.file("tls-server-" + std::to_string(++count) + ".log"));
        // The HTTP line ("listening http …" or "http: off") is the last one before the first
        // accept.
        bool up = process->wait_for_log("listening https", 20s);
        for (int i = 0; up && i < 250; ++i) {
            const std::string log = process->log();
            if (log.find("http: off") != std::string::npos ||
                log.find("listening http ") != std::string::npos)
                break;
            std::this_thread::sleep_for(20ms);
        }
        INFO(process->log());
        REQUIRE(up);
        https_port = port_from_log(process->log(), "https");
        http_port = port_from_log(process->log(), "http");
        REQUIRE(https_port != 0);
    }
    std::string https_url(const std::string& path = "/") const {
        return "https://localhost:" + std::to_string(https_port) + path;
    }
    std::string resolve() const { return "localhost:" + std::to_string(https_port) + ":127.0.0.1"; }
    std::string connect_to() const { return "127.0.0.1:" + std::to_string(https_port); }
    static inline int count = 0;
};

// curl, verbose (the TLS details go to stderr), trusting only the test's certificate.
ProcessResult curl_https(const Setup& s, const TlsServer& srv, std::vector<std::string> extra = {},
                         const std::string& path = "/") {
    std::vector<std::string> argv = {"curl",     "-sS",     "-v",        "--max-time",  "15",
                                     "--cacert", s.ca_file, "--resolve", srv.resolve(), "-D",
                                     "-",        "-o",      "/dev/null"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(srv.https_url(path));
    return run_process(argv);
}

ProcessResult s_client(const TlsServer& srv, const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {"openssl",        "s_client",    "-connect",
                                     srv.connect_to(), "-servername", "localhost"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(
        argv, {std::string(), 20s, {}});  // empty stdin: s_client quits after the handshake
}

std::string header_value(const std::string& headers, const std::string& name) {
    std::smatch m;
    if (!std::regex_search(headers, m,
                           std::regex("\r?\n" + name + ": ([^\r\n]*)\r?\n", std::regex::icase)))
        return "";
    return m[1].str();
}

// A plain TCP connection to 127.0.0.1:port (for byte-level requests).
int tcp_connect(uint16_t port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

std::string read_until_close(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

}  // namespace

TEST_CASE(
    "tls-server with a daemon-held RSA-2048 key answers curl over TLS 1.2 with an ECDHE suite",
    "[integration][tls]") {
    const TestIdentity rsa = make_identity(KeyKind::Rsa, 2048, "localhost");
    Setup s(nlohmann::json::array({identity_entry(rsa, "web-rsa")}), rsa.cert_pem);
    TlsServer srv(s, "web-rsa");
    CHECK(srv.process->log().find("RSA-2048 key " +
                                  keychaind::KeyId::for_public_key(rsa.spki_der).hex()) !=
          std::string::npos);

    const auto r = curl_https(s, srv);
    INFO(r.describe);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("SSL connection using TLSv1.2 / ECDHE-RSA-") != std::string::npos);
    CHECK(r.err.find("SSL certificate verify ok") != std::string::npos);
    CHECK(r.out.rfind("HTTP/1.1 200 OK", 0) == 0);
    // HSTS is off unless asked for.
    CHECK(header_value(r.out, "Strict-Transport-Security").empty());

    // openssl names the suite and the server's signature: RSA, made by the daemon.
    const auto o = s_client(srv, {"-tls1_2", "-CAfile", s.ca_file, "-verify_return_error"});
    INFO(o.describe);
    CHECK(o.exit_code == 0);
    CHECK(
        std::regex_search(o.out, std::regex("Cipher is ECDHE-RSA-AES(256|128)-GCM-SHA(384|256)")));
    CHECK(o.out.find("Peer signature type: RSA") != std::string::npos);
    CHECK(o.out.find("Verify return code: 0 (ok)") != std::string::npos);

    CHECK(srv.process->wait_for_log("TLSv1.2 TLS-ECDHE-RSA-WITH-", 5s));
    CHECK(srv.process->stop(SIGTERM) == 0);
    CHECK(srv.process->log().find("stopping on") != std::string::npos);
}

TEST_CASE("tls-server refuses TLS 1.1 and TLS 1.0 clients with a protocol_version alert",
          "[integration][tls]") {
    const TestIdentity rsa = make_identity(KeyKind::Rsa, 2048, "localhost");
    Setup s(nlohmann::json::array({identity_entry(rsa, "web-rsa")}), rsa.cert_pem);
    TlsServer srv(s, "web-rsa");
    // OpenSSL 3 offers TLS 1.0/1.1 only at security level 0: without it the client would refuse
    // on its own and the test would prove nothing about the server.
    for (const char* version : {"-tls1_1", "-tls1"}) {
        const auto o = s_client(srv, {version, "-cipher", "DEFAULT@SECLEVEL=0"});
        INFO(o.describe);
        CHECK(o.exit_code != 0);
        CHECK(o.all().find("alert protocol version") != std::string::npos);
        CHECK(o.all().find("Cipher is (NONE)") != std::string::npos);
    }
    CHECK(srv.process->wait_for_log("Handshake protocol not within min/max boundaries", 5s));
    // The same client at TLS 1.2 gets through.
    const auto ok = s_client(srv, {"-tls1_2", "-cipher", "DEFAULT@SECLEVEL=0"});
    INFO(ok.describe);
    CHECK(ok.out.find("Protocol  : TLSv1.2") != std::string::npos);
}

TEST_CASE("tls-server sends Strict-Transport-Security with the max-age given when enabled",
          "[integration][tls]") {
    const TestIdentity rsa = make_identity(KeyKind::Rsa, 2048, "localhost");
    Setup s(nlohmann::json::array({identity_entry(rsa, "web-rsa")}), rsa.cert_pem);

    SECTION("--hsts alone: the default max-age, two years") {
        TlsServer srv(s, "web-rsa", {"--hsts"});
        const auto r = curl_https(s, srv);
        INFO(r.describe);
        REQUIRE(r.exit_code == 0);
        CHECK(header_value(r.out, "Strict-Transport-Security") == "max-age=63072000");
    }
    SECTION("--hsts-max-age: that max-age, also on error responses") {
        TlsServer srv(s, "web-rsa", {"--hsts", "--hsts-max-age", "31536000"});
        const auto r = curl_https(s, srv);
        INFO(r.describe);
        REQUIRE(r.exit_code == 0);
        CHECK(header_value(r.out, "Strict-Transport-Security") == "max-age=31536000");
        const auto missing = curl_https(s, srv, {}, "/no-such-page");
        INFO(missing.describe);
        CHECK(missing.out.rfind("HTTP/1.1 404", 0) == 0);
        CHECK(header_value(missing.out, "Strict-Transport-Security") == "max-age=31536000");
    }
}

TEST_CASE("tls-server's HTTP port answers 301 to https, or there is none", "[integration][tls]") {
    const TestIdentity rsa = make_identity(KeyKind::Rsa, 2048, "localhost");
    Setup s(nlohmann::json::array({identity_entry(rsa, "web-rsa")}), rsa.cert_pem);

    SECTION("--http-port: a redirect to the same host and path over https, never HSTS") {
        TlsServer srv(s, "web-rsa", {"--http-port", "0", "--hsts"});
        REQUIRE(srv.http_port != 0);
        const std::string http_url =
            "http://localhost:" + std::to_string(srv.http_port) + "/orders?id=7";
        const auto r = run_process(
            {"curl", "-sS", "-D", "-", "-o", "/dev/null", "--max-time", "10", "--resolve",
             "localhost:" + std::to_string(srv.http_port) + ":127.0.0.1", http_url});
        INFO(r.describe);
        REQUIRE(r.exit_code == 0);
        CHECK(r.out.rfind("HTTP/1.1 301 Moved Permanently", 0) == 0);
        CHECK(header_value(r.out, "Location") == srv.https_url("/orders?id=7"));
        CHECK(header_value(r.out, "Strict-Transport-Security").empty());

        // curl follows it and lands on the TLS side.
        const auto follow =
            run_process({"curl", "-sS", "-L", "-v", "--max-time", "15", "--cacert", s.ca_file,
                         "--resolve", srv.resolve(), "--resolve",
                         "localhost:" + std::to_string(srv.http_port) + ":127.0.0.1",
                         "http://localhost:" + std::to_string(srv.http_port) + "/"});
        INFO(follow.describe);
        CHECK(follow.exit_code == 0);
        CHECK(follow.err.find("SSL connection using TLSv1.2 / ECDHE-RSA-") != std::string::npos);
        CHECK(follow.out.find("Hello from keychain-tls-server") != std::string::npos);

        // A Host header that could smuggle a header or a path is refused, not reflected.
        const int fd = tcp_connect(srv.http_port);
        const std::string evil = "GET / HTTP/1.1\r\nHost: evil.example/x\r\n\r\n";
        REQUIRE(send(fd, evil.data(), evil.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(evil.size()));
        const std::string answer = read_until_close(fd);
        close(fd);
        CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
        CHECK(answer.find("evil") == std::string::npos);
    }
    SECTION("without --http-port the server says HTTP is off and listens on one port only") {
        TlsServer srv(s, "web-rsa");
        CHECK(srv.http_port == 0);
        CHECK(srv.process->log().find("http: off") != std::string::npos);
        CHECK(srv.process->log().find("listening http ") == std::string::npos);
    }
}

TEST_CASE(
    "tls-server's signatures come from the daemon: once the key is forgotten, handshakes fail",
    "[integration][tls]") {
    const TestIdentity rsa = make_identity(KeyKind::Rsa, 2048, "localhost");
    Setup s(nlohmann::json::array({identity_entry(rsa, "web-rsa")}), rsa.cert_pem);
    TlsServer srv(s, "web-rsa");
    REQUIRE(curl_https(s, srv).exit_code == 0);

    keychain::Client kc(s.daemon->socket());
    REQUIRE(kc.forget(keychaind::KeyId::for_public_key(rsa.spki_der).hex()) == 1);
    const auto r = curl_https(s, srv);
    INFO(r.describe);
    CHECK(r.exit_code != 0);
    CHECK(srv.process->wait_for_log("TLS handshake failed", 5s));
    CHECK(srv.process->wait_for_log("keychaind SIGN failed: KEY_NOT_PRESENT", 5s));
    CHECK(srv.process->running());
}

TEST_CASE("tls-server delegates an EC P-256 key too: curl negotiates ECDHE-ECDSA",
          "[integration][tls]") {
    const TestIdentity ec = make_identity(KeyKind::EcP256, 0, "localhost");
    Setup s(nlohmann::json::array({identity_entry(ec, "web-ec")}), ec.cert_pem);
    TlsServer srv(s, "web-ec");
    CHECK(srv.process->log().find("EC P-256 key") != std::string::npos);

    const auto r = curl_https(s, srv);
    INFO(r.describe);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("SSL connection using TLSv1.2 / ECDHE-ECDSA-") != std::string::npos);
    const auto o = s_client(srv, {"-tls1_2", "-CAfile", s.ca_file, "-verify_return_error"});
    INFO(o.describe);
    CHECK(o.out.find("Peer signature type: ECDSA") != std::string::npos);
    CHECK(o.out.find("Verify return code: 0 (ok)") != std::string::npos);

    // And it is the daemon that signs.
    keychain::Client kc(s.daemon->socket());
    REQUIRE(kc.forget(keychaind::KeyId::for_public_key(ec.spki_der).hex()) == 1);
    CHECK(curl_https(s, srv).exit_code != 0);
    CHECK(srv.process->wait_for_log("keychaind SIGN failed: KEY_NOT_PRESENT", 5s));
}

TEST_CASE("tls-server --ciphers picks the suite, and refuses suites without forward secrecy",
          "[integration][tls]") {
    const TestIdentity rsa = make_identity(KeyKind::Rsa, 2048, "localhost");
    Setup s(nlohmann::json::array({identity_entry(rsa, "web-rsa")}), rsa.cert_pem);

    SECTION("an IANA name selects that suite") {
        TlsServer srv(s, "web-rsa", {"--ciphers", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"});
        const auto r = curl_https(s, srv);
        INFO(r.describe);
        CHECK(r.err.find("SSL connection using TLSv1.2 / ECDHE-RSA-AES128-GCM-SHA256") !=
              std::string::npos);
    }
    SECTION("static RSA key exchange is refused at start") {
        const auto r = run_process({KEYCHAIN_TLS_SERVER_BINARY, "--socket", s.daemon->socket(),
                                    "--key", "web-rsa", "--listen", "127.0.0.1", "--https-port",
                                    "0", "--ciphers", "TLS-RSA-WITH-AES-128-GCM-SHA256"});
        INFO(r.describe);
        CHECK(r.exit_code == 1);
        CHECK(r.err.find("TLS-RSA-WITH-AES-128-GCM-SHA256 has no forward secrecy") !=
              std::string::npos);
    }
    SECTION("a list with only ECDSA suites cannot serve an RSA key") {
        const auto r = run_process({KEYCHAIN_TLS_SERVER_BINARY, "--socket", s.daemon->socket(),
                                    "--key", "web-rsa", "--listen", "127.0.0.1", "--https-port",
                                    "0", "--ciphers", "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256"});
        INFO(r.describe);
        CHECK(r.exit_code == 1);
        CHECK(r.err.find("no listed cipher suite can be used with an RSA key") !=
              std::string::npos);
    }
}

TEST_CASE("tls-server refuses keys it cannot serve with a clear message", "[integration][tls]") {
    const TestIdentity rsa = make_identity(KeyKind::Rsa, 2048, "localhost");
    nlohmann::json entries = nlohmann::json::array(
        {identity_entry(rsa, "no-cert", false),
         {{"name", "a-kek"},
          {"encodedKey", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"}}});
    Setup s(entries, rsa.cert_pem);
    const auto start = [&](const std::string& key) {
        return run_process({KEYCHAIN_TLS_SERVER_BINARY, "--socket", s.daemon->socket(), "--key",
                            key, "--listen", "127.0.0.1", "--https-port", "0"});
    };
    const auto aes = start("a-kek");
    INFO(aes.describe);
    CHECK(aes.exit_code == 2);
    CHECK(aes.err.find("a-kek") != std::string::npos);
    CHECK(aes.err.find("UNSUPPORTED") != std::string::npos);

    const auto no_cert = start("no-cert");
    INFO(no_cert.describe);
    CHECK(no_cert.exit_code == 2);
    CHECK(no_cert.err.find("has no certificate chain") != std::string::npos);

    const auto absent = start("nobody");
    INFO(absent.describe);
    CHECK(absent.exit_code == 2);
    CHECK(absent.err.find("NO_SUCH_KEY") != std::string::npos);
}

TEST_CASE("tls-server bounds what a client may send and how long it may take",
          "[integration][tls]") {
    const TestIdentity rsa = make_identity(KeyKind::Rsa, 2048, "localhost");
    Setup s(nlohmann::json::array({identity_entry(rsa, "web-rsa")}), rsa.cert_pem);
    TlsServer srv(s, "web-rsa", {"--http-port", "0", "--timeout", "1"});

    SECTION("a request head over 16 KiB gets 431") {
        const int fd = tcp_connect(srv.http_port);
        const std::string big =
            "GET / HTTP/1.1\r\nHost: localhost\r\nX-Filler: " + std::string(20000, 'a') +
            "\r\n\r\n";
        send(fd, big.data(), big.size(), MSG_NOSIGNAL);
        const std::string answer = read_until_close(fd);
        close(fd);
        CHECK(answer.rfind("HTTP/1.1 431", 0) == 0);
    }
    SECTION("a client that never speaks is dropped after --timeout") {
        const auto t0 = std::chrono::steady_clock::now();
        const int fd = tcp_connect(srv.https_port);
        const std::string answer = read_until_close(fd);  // the server closes
        close(fd);
        const auto waited = std::chrono::steady_clock::now() - t0;
        CHECK(answer.empty());
        CHECK(waited >= 900ms);
        CHECK(waited < 10s);
        CHECK(srv.process->wait_for_log("TLS handshake failed: SSL - The operation timed out", 5s));
        // The server still serves.
        CHECK(curl_https(s, srv).exit_code == 0);
    }
}
