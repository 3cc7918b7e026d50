// The server's log: one line per event on standard error, never a secret.
#pragma once

#include <string>
#include <string_view>

namespace keychain::tls_server {

// Writes "keychain-tls-server: <line>\n" with one write(2), so lines of concurrent connections
// never interleave.
void log_line(std::string_view line);

// Control characters and non-ASCII bytes as \xNN, at most `max` bytes of input: for text that
// came from a client (a request line, a Host header) or from the daemon.
std::string printable(std::string_view text, size_t max = 200);

}  // namespace keychain::tls_server
