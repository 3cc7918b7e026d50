// Listening TCP sockets and the names of peers.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

#include "socket_fd.h"

namespace keychain::tls_server {

// A non-blocking listening socket on `address` (an IPv4 or IPv6 literal, or a host name) and
// `port` (0: the kernel picks one; bound_port tells which). Throws std::runtime_error.
SocketFd listen_on(const std::string& address, uint16_t port);
uint16_t bound_port(const SocketFd& listener);

struct Accepted {
    SocketFd fd;       // non-blocking (byte_streams.h waits with a deadline), close-on-exec
    std::string peer;  // "127.0.0.1:51234", "[::1]:51234"
};
// nullopt when nothing is waiting (or the peer went before accept).
std::optional<Accepted> accept_from(const SocketFd& listener);

}  // namespace keychain::tls_server
