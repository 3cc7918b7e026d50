// tls_handshakes: full TLS handshakes per second against an HTTPS server — each connection is new,
// with no session resumption, and carries one GET. Used by bench/nginx-handshakes to compare nginx
// with its key in keychaind against the same nginx with the key in a file.
//
//   tls_handshakes HOST PORT CA_FILE [SECONDS=5] [CONNECTIONS=4] [tls1.2|tls1.3]
//
// Prints one line: handshakes/s, the count, errors, and p50/p99 of the handshake+request time.
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct SslCtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
};
struct AddrFree {
    void operator()(addrinfo* a) const { freeaddrinfo(a); }
};

class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

  private:
    int fd_;
};

struct Totals {
    std::mutex mu;
    std::vector<double> micros;  // one per successful exchange
    unsigned long errors = 0;
};

// One connection: connect, full handshake (verifying the server against the CA), GET, read to EOF.
bool exchange(SSL_CTX* ctx, const addrinfo* addr, const std::string& host) {
    Fd fd(socket(addr->ai_family, addr->ai_socktype | SOCK_CLOEXEC, addr->ai_protocol));
    if (fd.get() < 0 || connect(fd.get(), addr->ai_addr, addr->ai_addrlen) != 0) return false;
    std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx));
    if (!ssl || SSL_set_fd(ssl.get(), fd.get()) != 1 ||
        SSL_set_tlsext_host_name(ssl.get(), host.c_str()) != 1 ||
        SSL_set1_host(ssl.get(), host.c_str()) != 1 || SSL_connect(ssl.get()) != 1)
        return false;
    const std::string request = "GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
    if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) <= 0) return false;
    char buf[4096];
    size_t got = 0;
    for (;;) {
        const int n = SSL_read(ssl.get(), buf, sizeof buf);
        if (n <= 0) break;
        got += static_cast<size_t>(n);
    }
    return got > 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr,
                     "usage: %s HOST PORT CA_FILE [SECONDS=5] [CONNECTIONS=4] [tls1.2|tls1.3]\n",
                     argv[0]);
        return 2;
    }
    const std::string host = argv[1];
    const std::string port = argv[2];
    const double seconds = argc > 4 ? std::atof(argv[4]) : 5.0;
    const int connections = argc > 5 ? std::atoi(argv[5]) : 4;
    const std::string version = argc > 6 ? argv[6] : "tls1.3";
    if (seconds <= 0 || connections <= 0 || connections > 1024 ||
        (version != "tls1.2" && version != "tls1.3")) {
        std::fprintf(stderr, "%s: bad SECONDS, CONNECTIONS or version\n", argv[0]);
        return 2;
    }

    std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
    const int v = version == "tls1.2" ? TLS1_2_VERSION : TLS1_3_VERSION;
    if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), v) != 1 ||
        SSL_CTX_set_max_proto_version(ctx.get(), v) != 1 ||
        SSL_CTX_load_verify_locations(ctx.get(), argv[3], nullptr) != 1) {
        std::fprintf(stderr, "%s: cannot set up TLS with CA file %s\n", argv[0], argv[3]);
        return 1;
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    // Every connection a full handshake: no client-side session cache, no tickets.
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);

    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
        std::fprintf(stderr, "%s: cannot resolve %s:%s\n", argv[0], host.c_str(), port.c_str());
        return 1;
    }
    std::unique_ptr<addrinfo, AddrFree> addr(found);

    Totals totals;
    const auto start = Clock::now();
    const auto until = start + std::chrono::duration<double>(seconds);
    std::vector<std::thread> threads;
    for (int i = 0; i < connections; ++i) {
        threads.emplace_back([&] {
            std::vector<double> mine;
            unsigned long errors = 0;
            while (Clock::now() < until) {
                const auto t0 = Clock::now();
                if (exchange(ctx.get(), addr.get(), host)) {
                    mine.push_back(
                        std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
                } else {
                    ++errors;
                    ERR_clear_error();
                }
            }
            std::lock_guard lk(totals.mu);
            totals.micros.insert(totals.micros.end(), mine.begin(), mine.end());
            totals.errors += errors;
        });
    }
    for (auto& t : threads) t.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

    std::vector<double>& m = totals.micros;
    std::sort(m.begin(), m.end());
    const auto pct = [&](double p) {
        return m.empty() ? 0.0
                         : m[std::min(m.size() - 1,
                                      static_cast<size_t>(p * static_cast<double>(m.size())))];
    };
    std::printf(
        "%.0f handshakes/s  (%zu in %.2f s, %d connections, %s, %lu errors; p50 %.0f us, "
        "p99 %.0f us)\n",
        static_cast<double>(m.size()) / elapsed, m.size(), elapsed, connections, version.c_str(),
        totals.errors, pct(0.50), pct(0.99));
    return m.empty() ? 1 : 0;
}
