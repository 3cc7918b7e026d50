// Serving one accepted connection, start to end, on a worker thread: HTTPS (handshake, one
// request, one response) or plain HTTP (one request, a redirect to HTTPS).
#pragma once

#include <mbedtls/ssl.h>

#include <chrono>
#include <string>

#include "http_exchange.h"
#include "socket_fd.h"

namespace keychain::tls_server {

struct ConnectionSettings {
    // The whole connection — TLS handshake (with the daemon's signature), request, response —
    // must fit in this; a client that dawdles is dropped.
    std::chrono::milliseconds timeout{10000};
    const mbedtls_ssl_config* tls = nullptr;
    HttpsSettings https;
    RedirectSettings redirect;
};

void serve_https(SocketFd fd, const std::string& peer, const ConnectionSettings& settings);
void serve_http_redirect(SocketFd fd, const std::string& peer, const ConnectionSettings& settings);

}  // namespace keychain::tls_server
