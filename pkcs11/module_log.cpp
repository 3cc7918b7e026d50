// The module's log on standard error.
#include "module_log.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace keychaind::pkcs11 {
namespace {

void write_line(std::string_view line) noexcept {
    try {
        std::string text = "keychaind-pkcs11: ";
        text.append(line.substr(0, 4000));
        text += '\n';
        size_t done = 0;
        while (done < text.size()) {
            const ssize_t n = ::write(STDERR_FILENO, text.data() + done, text.size() - done);
            if (n <= 0) return;
            done += static_cast<size_t>(n);
        }
    } catch (...) {
        // Logging never fails a PKCS#11 call.
    }
}

}  // namespace

bool debug_log_enabled() noexcept {
    // Read once: getenv is not safe against a concurrent setenv, and the answer never changes.
    static const bool enabled = [] {
        const char* v = secure_getenv("KEYCHAIND_PKCS11_DEBUG");
        return v != nullptr && *v != '\0';
    }();
    return enabled;
}

void log_debug(std::string_view line) noexcept {
    if (debug_log_enabled()) write_line(line);
}

void log_problem(std::string_view line) noexcept { write_line(line); }

void log_call_failure(const char* function, unsigned long rv, const char* detail) noexcept {
    if (!debug_log_enabled()) return;
    char code[24];
    (void)std::snprintf(code, sizeof code, "0x%08lx", rv);
    try {
        write_line(std::string(function) + ": " + code + ": " + detail);
    } catch (...) {
        // Logging never fails a PKCS#11 call.
    }
}

}  // namespace keychaind::pkcs11
