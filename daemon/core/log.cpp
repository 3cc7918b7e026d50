// Log sink: a whole line per write(2), so concurrent threads never interleave within a line.
#include "core/log.h"

#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace keychaind::log {
namespace {
std::atomic<Level> g_level{Level::Info};
std::atomic<bool> g_syslog{false};
std::atomic<bool> g_use_syslog{false};
constexpr int kSyslogPriorities[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
constexpr const char* kNames[] = {"debug", "info", "warning", "error"};
constexpr const char* kPriorities[] = {"<7>", "<6>", "<4>", "<3>"};
}  // namespace

void set_level(Level l) { g_level = l; }
void set_syslog_prefix(bool on) { g_syslog = on; }
void use_syslog() {
    openlog("keychaind", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    g_use_syslog = true;
}

void write(Level l, std::string_view message) {
    if (l < g_level.load()) return;
    const auto idx = static_cast<size_t>(l);
    if (g_use_syslog) {
        syslog(kSyslogPriorities[idx], "%.*s", static_cast<int>(message.size()), message.data());
        return;
    }
    std::string line;
    if (g_syslog) {
        line = kPriorities[idx];
    } else {
        char ts[32];
        const std::time_t now = std::time(nullptr);
        std::tm tm{};
        gmtime_r(&now, &tm);
        std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ ", &tm);
        line = ts;
        line += "keychaind ";
        line += kNames[idx];
        line += ": ";
    }
    line.append(message);
    line.push_back('\n');
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0) break;
        p += n;
        left -= static_cast<size_t>(n);
    }
}

std::string escape(std::string_view text, size_t max_len) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (out.size() >= max_len) {
            out += "...";
            break;
        }
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7f || c == '\\' || c >= 0x80 || c == '"') {
            if (c == '\\' || c == '"') {
                out.push_back('\\');
                out.push_back(static_cast<char>(c));
            } else {
                out += "\\x";
                out.push_back(kHex[c >> 4]);
                out.push_back(kHex[c & 15]);
            }
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    return out;
}

}  // namespace keychaind::log
