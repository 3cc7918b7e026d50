// Deadline-bounded I/O for plain and TLS connections.
#include "byte_streams.h"

#include <mbedtls/net_sockets.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>

namespace keychain::tls_server {

namespace {

enum class Wait { Ready, TimedOut, Failed };

Wait wait_for(int fd, short events, const Deadline& deadline) {
    for (;;) {
        const int ms = deadline.remaining_ms();
        if (ms == 0) return Wait::TimedOut;
        pollfd p{fd, events, 0};
        const int rc = ::poll(&p, 1, ms);
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) return Wait::Failed;
        if (rc == 0) continue;  // the loop re-checks the deadline
        return Wait::Ready;
    }
}

// -1 and errno for failures, like recv(2); waits for readiness first.
ssize_t recv_before(int fd, uint8_t* buf, size_t cap, const Deadline& deadline, Wait& wait) {
    for (;;) {
        const ssize_t n = ::recv(fd, buf, cap, 0);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        wait = wait_for(fd, POLLIN, deadline);
        if (wait != Wait::Ready) return -1;
    }
}

ssize_t send_before(int fd, const uint8_t* buf, size_t len, const Deadline& deadline, Wait& wait) {
    for (;;) {
        const ssize_t n = ::send(fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        wait = wait_for(fd, POLLOUT, deadline);
        if (wait != Wait::Ready) return -1;
    }
}

}  // namespace

int Deadline::remaining_ms() const {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end_ - std::chrono::steady_clock::now());
    return left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 1 << 30));
}

IoStatus PlainStream::read_some(uint8_t* buf, size_t cap, size_t& n) {
    Wait wait = Wait::Ready;
    const ssize_t r = recv_before(fd_.get(), buf, cap, deadline_, wait);
    if (r > 0) {
        n = static_cast<size_t>(r);
        return IoStatus::Ok;
    }
    if (r == 0) return IoStatus::Closed;
    return wait == Wait::TimedOut ? IoStatus::TimedOut : IoStatus::Failed;
}

IoStatus PlainStream::write_all(std::string_view bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
        Wait wait = Wait::Ready;
        const ssize_t w =
            send_before(fd_.get(), reinterpret_cast<const uint8_t*>(bytes.data()) + off,
                        bytes.size() - off, deadline_, wait);
        if (w < 0) return wait == Wait::TimedOut ? IoStatus::TimedOut : IoStatus::Failed;
        off += static_cast<size_t>(w);
    }
    return IoStatus::Ok;
}

TlsStream::TlsStream(const SocketFd& fd, const Deadline& deadline, const mbedtls_ssl_config* config)
    : fd_(fd), deadline_(deadline) {
    const int rc = mbedtls_ssl_setup(ssl_.get(), config);
    if (rc != 0) throw std::runtime_error("mbedtls_ssl_setup: " + mbedtls_error_text(rc));
    mbedtls_ssl_set_bio(ssl_.get(), this, send_cb, recv_cb, nullptr);
}

int TlsStream::send_cb(void* ctx, const unsigned char* buf, size_t len) {
    auto* self = static_cast<TlsStream*>(ctx);
    Wait wait = Wait::Ready;
    const ssize_t n = send_before(self->fd_.get(), buf, len, self->deadline_, wait);
    if (n >= 0) return static_cast<int>(n);
    if (wait == Wait::TimedOut) return MBEDTLS_ERR_SSL_TIMEOUT;
    return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
                                                 : MBEDTLS_ERR_NET_SEND_FAILED;
}

int TlsStream::recv_cb(void* ctx, unsigned char* buf, size_t len) {
    auto* self = static_cast<TlsStream*>(ctx);
    Wait wait = Wait::Ready;
    const ssize_t n = recv_before(self->fd_.get(), buf, len, self->deadline_, wait);
    if (n >= 0) return static_cast<int>(n);  // 0: the peer closed (MBEDTLS_ERR_SSL_CONN_EOF)
    if (wait == Wait::TimedOut) return MBEDTLS_ERR_SSL_TIMEOUT;
    return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
}

int TlsStream::handshake() {
    int rc;
    do {
        rc = mbedtls_ssl_handshake(ssl_.get());
    } while (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE);
    return rc;
}

IoStatus TlsStream::read_some(uint8_t* buf, size_t cap, size_t& n) {
    for (;;) {
        const int rc = mbedtls_ssl_read(ssl_.get(), buf, cap);
        if (rc > 0) {
            n = static_cast<size_t>(rc);
            return IoStatus::Ok;
        }
        if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) continue;
        last_error_ = rc;
        if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || rc == MBEDTLS_ERR_SSL_CONN_EOF)
            return IoStatus::Closed;
        return rc == MBEDTLS_ERR_SSL_TIMEOUT ? IoStatus::TimedOut : IoStatus::Failed;
    }
}

IoStatus TlsStream::write_all(std::string_view bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
        const int rc = mbedtls_ssl_write(ssl_.get(),
                                         reinterpret_cast<const unsigned char*>(bytes.data()) + off,
                                         bytes.size() - off);
        if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) continue;
        if (rc < 0) {
            last_error_ = rc;
            return rc == MBEDTLS_ERR_SSL_TIMEOUT ? IoStatus::TimedOut : IoStatus::Failed;
        }
        off += static_cast<size_t>(rc);
    }
    return IoStatus::Ok;
}

void TlsStream::close_notify() { mbedtls_ssl_close_notify(ssl_.get()); }

void finish_connection(const SocketFd& fd) {
    ::shutdown(fd.get(), SHUT_WR);
    const Deadline linger(std::chrono::milliseconds(500));
    uint8_t buf[4096];
    for (size_t dropped = 0; dropped < 64 * 1024;) {
        Wait wait = Wait::Ready;
        const ssize_t n = recv_before(fd.get(), buf, sizeof buf, linger, wait);
        if (n <= 0) return;
        dropped += static_cast<size_t>(n);
    }
}

template <class Stream>
HeadStatus read_request_head(Stream& s, std::string& head, size_t max) {
    uint8_t buf[4096];
    for (;;) {
        const size_t search_from = head.size() < 3 ? 0 : head.size() - 3;
        // Never read past `max`: the excess would be a request body or a flood.
        const size_t want = std::min(sizeof buf, max + 1 - head.size());
        size_t n = 0;
        switch (s.read_some(buf, want, n)) {
            case IoStatus::Ok:
                break;
            case IoStatus::Closed:
                return HeadStatus::Closed;
            case IoStatus::TimedOut:
                return HeadStatus::TimedOut;
            case IoStatus::Failed:
                return HeadStatus::Failed;
        }
        head.append(reinterpret_cast<const char*>(buf), n);
        const size_t end = head.find("\r\n\r\n", search_from);
        if (end != std::string::npos) {
            head.resize(end + 4);
            return HeadStatus::Ok;
        }
        if (head.size() > max) return HeadStatus::TooLarge;
    }
}

template HeadStatus read_request_head<PlainStream>(PlainStream&, std::string&, size_t);
template HeadStatus read_request_head<TlsStream>(TlsStream&, std::string&, size_t);

}  // namespace keychain::tls_server
