// The journal target: what reaches the journal socket (a stand-in in a private mount namespace).
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "audit/audit_log.h"
#include "captured_stderr.h"

using keychaind::AuditConfig;
using keychaind::AuditLog;
using keychaind::AuditRecord;

namespace {

// In a child with a mount namespace of its own, binds a datagram socket where journald's would be,
// writes one record through AuditLog, and passes what the socket received up a pipe.
// Returns the datagram, or "" with a note in `why`.
std::string journal_datagram(const AuditRecord& record, std::string& why) {
    int p[2];
    if (::pipe(p) != 0) {
        why = "pipe failed";
        return {};
    }
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(p[0]);
        const auto say = [&](const std::string& s) {
            (void)!::write(p[1], s.data(), s.size());
            ::_exit(0);
        };
        if (::unshare(CLONE_NEWNS) != 0) say(std::string("!unshare: ") + std::strerror(errno));
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
            say(std::string("!make-private: ") + std::strerror(errno));
        ::mkdir("/run/systemd", 0755);
        if (::mount("tmpfs", "/run/systemd", "tmpfs", 0, "size=64k") != 0)
            say(std::string("!mount: ") + std::strerror(errno));
        ::mkdir("/run/systemd/journal", 0755);
        const int s = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strcpy(a.sun_path, "/run/systemd/journal/socket");
        if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            say(std::string("!bind: ") + std::strerror(errno));
        AuditConfig cfg;
        cfg.target = "auto";  // must find the journal by itself
        AuditLog log(cfg);
        log.write(record);
        char buf[65536];
        const ssize_t n = ::recv(s, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) say("!nothing reached the journal socket");
        say(std::string(buf, static_cast<size_t>(n)));
    }
    ::close(p[1]);
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;)
        out.append(buf, static_cast<size_t>(n));
    ::close(p[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!out.empty() && out[0] == '!') {
        why = out.substr(1);
        return {};
    }
    return out;
}

// The journal's native protocol: "KEY=value\n", or "KEY\n" + 64-bit LE length + value + "\n".
std::map<std::string, std::string> journal_fields(const std::string& d) {
    std::map<std::string, std::string> out;
    size_t i = 0;
    while (i < d.size()) {
        const size_t nl = d.find('\n', i);
        const size_t eq = d.find('=', i);
        if (eq != std::string::npos && (nl == std::string::npos || eq < nl)) {
            const size_t end = nl == std::string::npos ? d.size() : nl;
            out[d.substr(i, eq - i)] = d.substr(eq + 1, end - eq - 1);
            i = end + 1;
        } else {
            const std::string key = d.substr(i, nl - i);
            uint64_t len = 0;
            std::memcpy(&len, d.data() + nl + 1, 8);
            out[key] = d.substr(nl + 9, len);
            i = nl + 9 + len + 1;
        }
    }
    return out;
}

}  // namespace

TEST_CASE("journal records carry MESSAGE, SYSLOG_IDENTIFIER, KEYCHAIND_EVENT and PRIORITY") {
    std::string why;
    const std::string d = journal_datagram(AuditRecord("device-refused")
                                               .add("fs_label", "%s%n\nPRIORITY=0")
                                               .add("rule", "default deny"),
                                           why);
    if (d.empty()) {
        WARN("cannot stand in for the journal here (" + why +
             "); the journal target is not tested");
        return;
    }
    const auto f = journal_fields(d);
    CHECK(f.at("SYSLOG_IDENTIFIER") == "keychaind-audit");
    CHECK(f.at("KEYCHAIND_EVENT") == "device-refused");
    CHECK(f.at("PRIORITY") == "6");
    const std::string& message = f.at("MESSAGE");
    CHECK(message.find('\n') == std::string::npos);
    CHECK(message.find('%') == std::string::npos);
    const auto j = nlohmann::json::parse(message);
    CHECK(j["event"] == "device-refused");
    CHECK(j["fs_label"] == "%s%n\nPRIORITY=0");
    std::string names;
    for (const auto& [k, v] : f) names += k + " ";
    INFO(names);
    CHECK(f.size() == 4);
}

TEST_CASE("a journal that is not there is logged once, never thrown") {
    struct stat st {};
    if (::stat("/run/systemd/journal/socket", &st) == 0) {
        WARN("a journal is running here; the missing-journal case is not tested");
        return;
    }
    keychaind::test::CapturedStderr err;
    AuditConfig cfg;
    cfg.target = "journal";
    AuditLog log(cfg);
    CHECK_NOTHROW(log.write(AuditRecord("x")));
    CHECK_NOTHROW(log.write(AuditRecord("y")));
    CHECK(err.lines_with("audit: the journal is not running (no /run/systemd/journal/socket); "
                         "serving continues") == 1);
}
