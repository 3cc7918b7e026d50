// The server's log lines.
#include "server_log.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace keychain::tls_server {

void log_line(std::string_view line) {
    std::string out = "keychain-tls-server: ";
    out += line;
    out += '\n';
    size_t off = 0;
    while (off < out.size()) {
        const ssize_t n = ::write(STDERR_FILENO, out.data() + off, out.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        off += static_cast<size_t>(n);
    }
}

std::string printable(std::string_view text, size_t max) {
    std::string out;
    const size_t n = text.size() < max ? text.size() : max;
    for (size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char esc[8];
            snprintf(esc, sizeof esc, "\\x%02x", c);
            out += esc;
        }
    }
    if (text.size() > max) out += "...";
    return out;
}

}  // namespace keychain::tls_server
