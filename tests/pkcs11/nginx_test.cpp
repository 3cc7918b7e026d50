// nginx, unmodified, serving HTTPS with a key that stays in keychaind: OpenSSL's pkcs11 engine
// (Debian's libengine-pkcs11-openssl) loads libkeychaind-pkcs11.so in nginx's root master, the
// workers run as nobody and sign through the daemon. The key comes from a .4DKeyChain file or from
// a SoftHSM2 token behind the daemon.
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <keychain/client.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "external_tools.h"
#include "pkcs11_fixture.h"

using namespace keychaind::test;

namespace {

size_t count_matches(const std::string& text, const std::string& pattern) {
    const std::regex re(pattern);
    return static_cast<size_t>(
        std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

// OpenSSL's engine directory (`openssl version -e`), where libengine-pkcs11-openssl puts pkcs11.so.
std::string engine_path() {
    const ToolResult r = run_tool({"openssl", "version", "-e"});
    std::smatch m;
    REQUIRE(std::regex_search(r.output, m, std::regex("ENGINESDIR: \"([^\"]+)\"")));
    const std::string path = m[1].str() + "/pkcs11.so";
    INFO(path << ": install Debian's libengine-pkcs11-openssl (packaging/install-build-deps)");
    REQUIRE(access(path.c_str(), R_OK) == 0);
    return path;
}

// The workers (nobody:nogroup) must reach the daemon's socket, as nginx's worker user does when an
// operator adds it to the socket's group: the directory becomes traversable and the socket's group
// nogroup (what `socket_group = "nogroup"` would do; mode 0660 stays).
void open_socket_to_workers(KeychainDaemon& daemon) {
    const group* nogroup = getgrnam("nogroup");
    REQUIRE(nogroup != nullptr);
    REQUIRE(chmod(daemon.dir().c_str(), 0755) == 0);
    REQUIRE(chown(daemon.socket().c_str(), static_cast<uid_t>(-1), nogroup->gr_gid) == 0);
}

// nginx in the foreground with its own prefix in the daemon's directory, listening on 127.0.0.1.
// Session caches and tickets are off and so is keep-alive: every request is a new connection and
// a full handshake, so every request makes the daemon sign.
class Nginx {
  public:
    Nginx(KeychainDaemon& daemon, const std::string& key_label, const std::string& cert_pem)
        : prefix_(daemon.dir() + "/nginx"), port_(free_tcp_port()) {
        REQUIRE(mkdir(prefix_.c_str(), 0700) == 0);
        REQUIRE(mkdir((prefix_ + "/logs").c_str(), 0700) == 0);
        REQUIRE(mkdir((prefix_ + "/tmp").c_str(), 0700) == 0);
        cert_path_ = prefix_ + "/cert.pem";
        std::ofstream(cert_path_) << cert_pem;
        const std::string openssl_cnf = prefix_ + "/openssl.cnf";
        std::ofstream(openssl_cnf)
            << "openssl_conf = openssl_init\n"
               "[openssl_init]\nengines = engine_section\n"
               "[engine_section]\npkcs11 = pkcs11_section\n"
               "[pkcs11_section]\nengine_id = pkcs11\n"
               "dynamic_path = "
            << engine_path() << "\nMODULE_PATH = " << LoadedModule::path() << "\ninit = 1\n";
        const std::string module_conf = prefix_ + "/pkcs11.conf";
        std::ofstream(module_conf) << "socket = \"" << daemon.socket() << "\"\n";
        const std::string conf = prefix_ + "/nginx.conf";
        const std::string tmp = prefix_ + "/tmp/";
        std::ofstream(conf)
            << "user nobody nogroup;\nworker_processes 2;\n"
            << "error_log " << error_log_path() << " info;\npid " << prefix_ << "/logs/nginx.pid;\n"
            << "env KEYCHAIND_PKCS11_CONFIG;\nenv KEYCHAIND_PKCS11_DEBUG;\n"
            << "events { worker_connections 256; }\n"
            << "http {\n  access_log off;\n  keepalive_timeout 0;\n"
            << "  client_body_temp_path " << tmp << "body;\n  proxy_temp_path " << tmp << "proxy;\n"
            << "  fastcgi_temp_path " << tmp << "fastcgi;\n  uwsgi_temp_path " << tmp << "uwsgi;\n"
            << "  scgi_temp_path " << tmp << "scgi;\n"
            << "  server {\n    listen 127.0.0.1:" << port_ << " ssl;\n"
            << "    ssl_certificate " << cert_path_ << ";\n"
            << "    ssl_certificate_key \"engine:pkcs11:pkcs11:token=keychaind;object=" << key_label
            << ";type=private\";\n"
            << "    ssl_protocols TLSv1.2 TLSv1.3;\n"
            << "    ssl_session_cache off;\n    ssl_session_tickets off;\n"
            << "    location / { return 200 \"served\\n\"; }\n  }\n}\n";
        // The module finds the daemon through its config file; OPENSSL_CONF loads the engine.
        process_ = std::make_unique<BackgroundTool>(
            std::vector<std::string>{"env", "-u", "KEYCHAIND_SOCKET", "OPENSSL_CONF=" + openssl_cnf,
                                     "KEYCHAIND_PKCS11_CONFIG=" + module_conf,
                                     "KEYCHAIND_PKCS11_DEBUG=1", "nginx", "-p", prefix_, "-e",
                                     error_log_path(), "-c", conf, "-g", "daemon off;"},
            prefix_ + "/nginx.out");
        if (!wait_for_tcp_port(port_, std::chrono::seconds(15)))
            FAIL("nginx did not start; its output:\n"
                 << output() << "\nerror log:\n"
                 << error_log());
    }

    int port() const { return port_; }
    const std::string& cert_path() const { return cert_path_; }
    bool running() { return process_->running(); }
    std::string error_log_path() const { return prefix_ + "/logs/error.log"; }
    std::string error_log() const {  // empty until nginx has written it
        return access(error_log_path().c_str(), F_OK) == 0 ? read_file_text(error_log_path()) : "";
    }
    std::string output() const { return process_->log(); }

    struct Fetched {
        size_t served = 0;        // answers 200 with the body, each on a connection of its own
        int exit_code = -1;       // curl's: the last failure's
        std::string diagnostics;  // curl's output and nginx's error log, for a failed check
    };
    // `count` requests, each on a new connection (curl's URL glob; the server closes every one).
    Fetched fetch(int count, const std::vector<std::string>& curl_options = {}) const {
        std::vector<std::string> argv = {
            "curl",     "-sS", "--cacert",
            cert_path_, "-w",  "status %{http_code} connects %{num_connects}\\n"};
        argv.insert(argv.end(), curl_options.begin(), curl_options.end());
        argv.push_back("https://localhost:" + std::to_string(port_) + "/[1-" +
                       std::to_string(count) + "]");
        const ToolResult r = run_tool(argv, std::chrono::seconds(120));
        Fetched f;
        f.exit_code = r.exit_code;
        f.served = count_matches(r.output, "served\nstatus 200 connects 1\n");
        std::string log = error_log();
        if (log.size() > 4000) log = "..." + log.substr(log.size() - 4000);
        f.diagnostics = "curl:\n" + r.output.substr(0, 2000) + "\nnginx's error log:\n" + log;
        return f;
    }

  private:
    std::string prefix_;
    int port_;
    std::string cert_path_;
    std::unique_ptr<BackgroundTool> process_;
};

// The audit's records of signatures with this key made by nginx's workers: nobody, /usr/sbin/nginx.
size_t worker_signs(const KeychainDaemon& daemon, const std::string& key_id) {
    size_t n = 0;
    std::istringstream in(read_file_text(daemon.audit_path()));
    std::string line;
    while (std::getline(in, line)) {
        INFO(line);
        REQUIRE(nlohmann::json::accept(line));
        const nlohmann::json r = nlohmann::json::parse(line);
        if (r.value("event", "") == "decision" && r.value("op", "") == "sign" &&
            r.value("key_id", "") == key_id && r.value("result", "") == "allow" &&
            r["peer"].value("uid", -1) == 65534 &&
            r["peer"].value("exe", "").find("/nginx") != std::string::npos)
            ++n;
    }
    return n;
}

struct ServedKey {
    std::string label;
    std::string id;
    const TestIdentity* identity;
};

// Hundreds of requests on fresh connections, each signed by the daemon for a non-root worker;
// then the key is forgotten (new handshakes fail, nginx and its workers live on) and found again
// by DISCOVER (handshakes succeed again, with the handles the workers kept).
void serve_forget_and_return(KeychainDaemon& daemon, const ServedKey& key) {
    open_socket_to_workers(daemon);
    Nginx nginx(daemon, key.label, key.identity->cert_pem);
    size_t signs = 0;
    {
        const Nginx::Fetched f = nginx.fetch(300);
        INFO(f.diagnostics);
        CHECK(f.exit_code == 0);
        CHECK(f.served == 300);
        signs = worker_signs(daemon, key.id);
        CHECK(signs >= 300);
    }
    keychain::Client admin(daemon.socket());  // root: FORGET and DISCOVER are admin operations
    REQUIRE(admin.forget(key.id) == 1);
    {
        const Nginx::Fetched f = nginx.fetch(20);
        INFO(f.diagnostics);
        CHECK(f.served == 0);
        CHECK(f.exit_code == 35);  // CURLE_SSL_CONNECT_ERROR: the handshake failed, cleanly
        CHECK(f.diagnostics.find("alert internal error") != std::string::npos);
        CHECK(nginx.running());
        const std::string log = nginx.error_log();
        CHECK(log.find("SSL_do_handshake() failed") != std::string::npos);
        CHECK(log.find("exited on signal") == std::string::npos);  // no worker crashed
        // The module says why (nginx sends its workers' standard error to the error log).
        CHECK(log.find("KEY_NOT_PRESENT") != std::string::npos);
    }
    CHECK(admin.discover() >= 1);
    {
        const Nginx::Fetched f = nginx.fetch(50);
        INFO(f.diagnostics);
        CHECK(f.served == 50);
        CHECK(f.exit_code == 0);
        CHECK(worker_signs(daemon, key.id) >= signs + 50);
        CHECK(nginx.running());
        CHECK(nginx.error_log().find("exited on signal") == std::string::npos);
    }
}

// An RSA key over TLS 1.3 (RSA-PSS) and TLS 1.2 (ECDHE-RSA).
void serve_rsa(KeychainDaemon& daemon, const ServedKey& key) {
    open_socket_to_workers(daemon);
    Nginx nginx(daemon, key.label, key.identity->cert_pem);
    for (const auto& versions : {std::vector<std::string>{"--tlsv1.3"},
                                 std::vector<std::string>{"--tlsv1.2", "--tls-max", "1.2"}}) {
        const Nginx::Fetched f = nginx.fetch(60, versions);
        INFO(versions.front() << "\n" << f.diagnostics);
        CHECK(f.served == 60);
        CHECK(f.exit_code == 0);
    }
    CHECK(worker_signs(daemon, key.id) >= 120);
    CHECK(nginx.running());
}

}  // namespace

TEST_CASE("nginx with a key from a .4DKeyChain file serves HTTPS from non-root workers") {
    require_tool("nginx", "nginx");
    require_tool("curl", "curl");
    const TestKeychain& k = test_keychain();
    KeychainDaemon daemon;
    SECTION("EC P-256: hundreds of handshakes, then FORGET and DISCOVER while nginx runs") {
        serve_forget_and_return(daemon, {"web-ec", hex(sha256(k.ec.spki_der)), &k.ec});
    }
    SECTION("RSA-2048 over TLS 1.3 and TLS 1.2") {
        serve_rsa(daemon, {"web-rsa", hex(sha256(k.rsa.spki_der)), &k.rsa});
    }
}

TEST_CASE(
    "nginx with a SoftHSM2 token's key behind the daemon serves HTTPS from non-root workers") {
    require_tool("nginx", "nginx");
    require_tool("curl", "curl");
    SoftToken::Options options;
    options.common_name = "localhost";
    SoftToken token(options);
    KeychainDaemon daemon(token);
    SECTION("EC P-256: hundreds of handshakes, then FORGET and DISCOVER while nginx runs") {
        serve_forget_and_return(daemon, {SoftToken::kEcLabel, token.ec_key_id(), &token.ec()});
    }
    SECTION("RSA-2048 over TLS 1.3 and TLS 1.2") {
        serve_rsa(daemon, {SoftToken::kRsaLabel, token.rsa_key_id(), &token.rsa()});
    }
}
