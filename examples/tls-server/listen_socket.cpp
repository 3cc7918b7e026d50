// Binding, listening and accepting.
#include "listen_socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace keychain::tls_server {

namespace {

std::string address_text(const sockaddr* sa) {
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        return std::string(host) + ":" + std::to_string(port);
    }
    if (sa->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        return "[" + std::string(host) + "]:" + std::to_string(port);
    }
    return "?";
}

}  // namespace

SocketFd listen_on(const std::string& address, uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    const int gai = getaddrinfo(address.c_str(), service.c_str(), &hints, &found);
    if (gai != 0) throw std::runtime_error("cannot resolve " + address + ": " + gai_strerror(gai));
    std::string last_error = "no address";
    SocketFd result;
    for (addrinfo* ai = found; ai != nullptr && !result.valid(); ai = ai->ai_next) {
        SocketFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                             ai->ai_protocol));
        if (!fd.valid()) {
            last_error = std::strerror(errno);
            continue;
        }
        const int one = 1;
        setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), 128) != 0) {
            last_error = std::strerror(errno);
            continue;
        }
        result = std::move(fd);
    }
    freeaddrinfo(found);
    if (!result.valid())
        throw std::runtime_error("cannot listen on " + address + " port " + service + ": " +
                                 last_error);
    return result;
}

uint16_t bound_port(const SocketFd& listener) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(listener.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

std::optional<Accepted> accept_from(const SocketFd& listener) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    for (;;) {
        const int fd = ::accept4(listener.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            Accepted a{SocketFd(fd), address_text(reinterpret_cast<const sockaddr*>(&ss))};
            const int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return a;
        }
        if (errno == EINTR) continue;
        // Out of descriptors: the listener stays readable, so pause instead of spinning.
        if (errno == EMFILE || errno == ENFILE) ::usleep(100 * 1000);
        // EAGAIN: nothing waiting; ECONNABORTED and the like: the peer is gone. Either way the
        // listener stays up.
        return std::nullopt;
    }
}

}  // namespace keychain::tls_server
