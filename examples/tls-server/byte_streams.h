// The two ways bytes travel on a connection — plain TCP and TLS over it — each bounded by the
// connection's deadline: no read or write waits past it, the TLS handshake included.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "mbedtls_handles.h"
#include "socket_fd.h"

namespace keychain::tls_server {

class Deadline {
  public:
    explicit Deadline(std::chrono::milliseconds budget)
        : end_(std::chrono::steady_clock::now() + budget) {}
    // Milliseconds left, 0 once passed.
    int remaining_ms() const;

  private:
    std::chrono::steady_clock::time_point end_;
};

enum class IoStatus { Ok, Closed, TimedOut, Failed };

// Plain TCP on a non-blocking socket.
class PlainStream {
  public:
    PlainStream(const SocketFd& fd, const Deadline& deadline) : fd_(fd), deadline_(deadline) {}
    // Some bytes into buf (n > 0), or why none came.
    IoStatus read_some(uint8_t* buf, size_t cap, size_t& n);
    IoStatus write_all(std::string_view bytes);

  private:
    const SocketFd& fd_;
    const Deadline& deadline_;
};

// A TLS server session over a non-blocking socket.
class TlsStream {
  public:
    TlsStream(const SocketFd& fd, const Deadline& deadline, const mbedtls_ssl_config* config);
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;

    // 0 or the mbedTLS error (MBEDTLS_ERR_SSL_TIMEOUT when the deadline passed).
    int handshake();
    IoStatus read_some(uint8_t* buf, size_t cap, size_t& n);
    IoStatus write_all(std::string_view bytes);
    void close_notify();

    std::string version() const { return text_or_none(mbedtls_ssl_get_version(ssl_.get())); }
    std::string cipher_suite() const {
        return text_or_none(mbedtls_ssl_get_ciphersuite(ssl_.get()));
    }
    // The last mbedTLS error of a read or write.
    int last_error() const { return last_error_; }

  private:
    static std::string text_or_none(const char* s) { return s != nullptr ? s : "none"; }
    static int send_cb(void* ctx, const unsigned char* buf, size_t len);
    static int recv_cb(void* ctx, unsigned char* buf, size_t len);

    const SocketFd& fd_;
    const Deadline& deadline_;
    SslSession ssl_;
    int last_error_ = 0;
};

// After the response: sends FIN, then reads and drops what the client still sends (briefly, and
// bounded), so closing with unread bytes does not reset the connection under the response.
void finish_connection(const SocketFd& fd);

// Reads until the empty line that ends an HTTP request head ("\r\n\r\n"), at most max bytes.
enum class HeadStatus { Ok, TooLarge, Closed, TimedOut, Failed };
template <class Stream>
HeadStatus read_request_head(Stream& s, std::string& head, size_t max);

}  // namespace keychain::tls_server
