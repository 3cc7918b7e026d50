// keychain-tls-server: an HTTPS server on mbedTLS 2.28 whose private key stays in keychaind
// (README.md).
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>

#include "cipher_policy.h"
#include "connection.h"
#include "daemon_key.h"
#include "listen_socket.h"
#include "server_log.h"
#include "tls_config.h"
#include "worker_pool.h"

namespace {

using namespace keychain::tls_server;

constexpr int kExitUsage = 1;
constexpr int kExitStartup = 2;

struct Options {
    DaemonKeyOptions key;
    std::string listen = "0.0.0.0";
    uint16_t https_port = 8443;
    std::optional<uint16_t> http_port;
    std::string ciphers;
    bool hsts = false;
    uint64_t hsts_max_age = 63072000;
    uint32_t timeout_s = 10;
    unsigned workers = 8;
    size_t max_queued = 64;
    std::string public_host;
};

std::string host_for_urls(const std::string& listen) {
    if (listen == "0.0.0.0" || listen == "::") return "localhost";
    return listen.find(':') != std::string::npos ? "[" + listen + "]" : listen;
}

std::string display_address(const std::string& listen, uint16_t port) {
    return (listen.find(':') != std::string::npos ? "[" + listen + "]" : listen) + ":" +
           std::to_string(port);
}

// SIGINT and SIGTERM arrive on a descriptor the accept loop polls. Blocked before any thread
// starts, so every thread inherits the mask and none is interrupted.
SocketFd stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);
    SocketFd fd(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd.valid()) throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
    return fd;
}

int serve(const Options& o) {
    // TLS session keys live in this process: keep them out of core dumps.
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    const SocketFd signals = stop_signals();

    DaemonKey key(o.key);
    const CipherChoice ciphers = choose_cipher_suites(o.ciphers, key.is_rsa());
    for (const auto& note : ciphers.ignored) log_line("cipher suites: ignoring " + note);
    const TlsConfig tls(key, ciphers.suites);

    const SocketFd https = listen_on(o.listen, o.https_port);
    SocketFd http;
    if (o.http_port) http = listen_on(o.listen, *o.http_port);

    ConnectionSettings settings;
    settings.timeout = std::chrono::seconds(o.timeout_s);
    settings.tls = tls.get();
    settings.https.hsts = o.hsts;
    settings.https.hsts_max_age = o.hsts_max_age;
    settings.https.key_description = key.description();
    settings.redirect.https_port = bound_port(https);
    settings.redirect.fallback_host =
        o.public_host.empty() ? host_for_urls(o.listen) : o.public_host;

    std::string suites;
    for (int id : ciphers.suites)
        if (id != 0)
            suites += std::string(suites.empty() ? "" : ":") + mbedtls_ssl_get_ciphersuite_name(id);
    log_line("key " + key.description() +
             " (signs through keychaind; certificate chain from GET_PUBLIC)");
    log_line("TLS 1.2; cipher suites " + suites);
    log_line(o.hsts ? "HSTS: Strict-Transport-Security: max-age=" + std::to_string(o.hsts_max_age)
                    : "HSTS: off");
    log_line("listening https " + display_address(o.listen, bound_port(https)));
    if (http.valid())
        log_line("listening http " + display_address(o.listen, bound_port(http)) +
                 " (301 to https)");
    else
        log_line("http: off");

    WorkerPool pool(o.workers, o.max_queued, [&settings](ConnectionJob& job) {
        if (job.tls)
            serve_https(std::move(job.fd), job.peer, settings);
        else
            serve_http_redirect(std::move(job.fd), job.peer, settings);
    });

    pollfd fds[3] = {{signals.get(), POLLIN, 0}, {https.get(), POLLIN, 0}, {http.get(), POLLIN, 0}};
    const nfds_t nfds = http.valid() ? 3 : 2;
    for (;;) {
        if (::poll(fds, nfds, -1) < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
        }
        if (fds[0].revents != 0) {
            signalfd_siginfo si{};
            if (::read(signals.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si))
                log_line(std::string("stopping on ") + strsignal(static_cast<int>(si.ssi_signo)));
            break;
        }
        for (nfds_t i = 1; i < nfds; ++i) {
            if (fds[i].revents == 0) continue;
            auto accepted = accept_from(i == 1 ? https : http);
            if (!accepted) continue;
            const std::string peer = accepted->peer;
            if (!pool.submit({std::move(accepted->fd), accepted->peer, i == 1}))
                log_line("peer " + peer + ": dropped, " + std::to_string(o.max_queued) +
                         " connections already wait");
        }
    }
    return 0;  // the pool's destructor lets running connections finish
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    CLI::App app{"keychain-tls-server: an HTTPS server whose private key stays in keychaind"};
    app.add_option("--key", o.key.key, "the TLS key: a key id, label:NAME or a label")->required();
    app.add_option(
           "--socket", o.key.socket,
           "keychaind's socket (default $KEYCHAIND_SOCKET, then /run/keychaind/keychaind.sock)")
        ->type_name("PATH");
    app.add_option("--wait", o.key.wait_seconds, "wait up to this long for the key to be present")
        ->check(CLI::Range(0u, 3600u))
        ->type_name("SECONDS");
    app.add_option("--listen", o.listen, "address to listen on (default 0.0.0.0)")
        ->type_name("ADDR");
    app.add_option("--https-port", o.https_port,
                   "HTTPS port (default 8443; 0 = any free port, logged)")
        ->type_name("PORT");
    app.add_option("--http-port", o.http_port,
                   "also listen for plain HTTP here and answer 301 to https (default: no HTTP)")
        ->type_name("PORT");
    app.add_option("--public-host", o.public_host,
                   "host name for redirects when a request has no Host header")
        ->type_name("HOST");
    app.add_option(
           "--ciphers", o.ciphers,
           "cipher suites, ':'-separated mbedTLS or IANA names; only ECDHE/DHE (forward secrecy). "
           "Default: the ECDHE AEAD suites for the key's type")
        ->type_name("LIST");
    app.add_flag("--hsts", o.hsts, "send Strict-Transport-Security on HTTPS responses");
    app.add_option("--hsts-max-age", o.hsts_max_age, "HSTS max-age (default 63072000 = two years)")
        ->type_name("SECONDS");
    app.add_option("--timeout", o.timeout_s,
                   "per connection: handshake, request and response (default 10)")
        ->check(CLI::Range(1u, 600u))
        ->type_name("SECONDS");
    app.add_option("--workers", o.workers, "connections served at once (default 8)")
        ->check(CLI::Range(1u, 1024u));
    app.add_option("--max-queued", o.max_queued,
                   "accepted connections waiting for a worker (default 64)")
        ->check(CLI::Range(size_t{1}, size_t{65536}));
    app.footer("Default cipher suites:\n  RSA key: " + default_cipher_suites(true) +
               "\n  EC key:  " + default_cipher_suites(false) +
               "\nExit codes: 0 stopped by SIGINT/SIGTERM, 1 usage error (options, cipher list), 2 "
               "cannot start (key, daemon, port).");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : kExitUsage;
    }
    o.key.sign_timeout_ms = o.timeout_s * 1000;
    try {
        return serve(o);
    } catch (const std::invalid_argument& e) {
        log_line(e.what());
        return kExitUsage;
    } catch (const std::exception& e) {
        log_line(e.what());
        return kExitStartup;
    }
}
