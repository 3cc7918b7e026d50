// Audit records as JSON lines, written to the journal and/or an append-only file.
#include "audit/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
// Only the fields written here: no CODE_FILE/CODE_LINE/CODE_FUNC of this source file.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/log.h"

namespace keychaind {
namespace {

constexpr size_t kMaxValueBytes = 1024;
constexpr size_t kMaxFieldNameBytes = 64;
constexpr const char* kJournalSocket = "/run/systemd/journal/socket";

// At most `max` bytes, cut at a UTF-8 character boundary, then "…".
std::string bounded(std::string_view s, size_t max = kMaxValueBytes) {
    if (s.size() <= max) return std::string(s);
    size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    return std::string(s.substr(0, cut)) + "\u2026";
}

std::string utc_timestamp() {
    const auto now = std::chrono::system_clock::now();
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms % 1000));
    return std::string(buf, n) + frac;
}

// JSON escapes what must be escaped; this also escapes what a terminal or a log pipeline might
// act on: '%' (format strings), DEL and the C1 controls (U+0080–U+009F, e.g. U+009B, a CSI).
// All of these can only occur inside JSON strings, where \uXXXX means the same character.
std::string harden(const std::string& json) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(json.size() + 16);
    for (size_t i = 0; i < json.size(); ++i) {
        const auto c = static_cast<unsigned char>(json[i]);
        unsigned code = 0x10000;  // none
        if (c == '%' || c == 0x7f) {
            code = c;
        } else if (c == 0xC2 && i + 1 < json.size() &&
                   static_cast<unsigned char>(json[i + 1]) >= 0x80 &&
                   static_cast<unsigned char>(json[i + 1]) <= 0x9F) {
            code = static_cast<unsigned char>(json[i + 1]);
            ++i;
        }
        if (code == 0x10000) {
            out.push_back(static_cast<char>(c));
            continue;
        }
        out += "\\u00";
        out.push_back(kHex[code >> 4]);
        out.push_back(kHex[code & 15]);
    }
    return out;
}

bool journal_present() {
    struct stat st {};
    return ::stat(kJournalSocket, &st) == 0 && S_ISSOCK(st.st_mode);
}

// Opens the audit file for appending, refusing a symlink or anything but a regular file.
int open_audit_file(const std::string& path) {
    // O_NONBLOCK so that a FIFO planted at the path cannot stall the open.
    const int fd = ::open(
        path.c_str(),
        O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
    if (fd < 0) {
        const int err = errno;
        struct stat st {};
        if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
            throw std::runtime_error("audit file " + path + " is a symlink; refusing it");
        // ENXIO: a FIFO or socket nobody reads.
        if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
            throw std::runtime_error("audit file " + path + " is not a regular file; refusing it");
        throw std::runtime_error("cannot open audit file " + path + ": " + std::strerror(err));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw std::runtime_error("audit file " + path + " is not a regular file; refusing it");
    }
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    if ((st.st_mode & 0077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        log::warning("audit file " + path + " has mode " + mode +
                     ": others than its owner may read it");
    }
    return fd;
}

// One write(2) of the whole line; a short write is finished, and if that fails the partial line
// is cut off again so the file only ever holds whole lines. Returns 0 or an errno value.
int append_line(int fd, const std::string& line) {
    size_t done = 0;
    while (done < line.size()) {
        const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
        if (n > 0) {
            done += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        const int err = n < 0 ? errno : EIO;
        if (done > 0) {
            const off_t end = ::lseek(fd, 0, SEEK_END);
            if (end >= static_cast<off_t>(done))
                (void)!::ftruncate(fd, end - static_cast<off_t>(done));
        }
        return err;
    }
    return 0;
}

// Whether the constructor opened the file (it stays open, reopened in place, until the end).
bool file_in_use(const AuditConfig& cfg, bool journal) {
    return cfg.target == "file" || cfg.target == "both" ||
           (cfg.target == "auto" && !journal && !cfg.file.empty());
}

// The "event" value of a line json() made, as it stands in the line (already escaped): it is
// the second member, after "ts" whose value holds no quote.
std::string event_of(const std::string& line) {
    constexpr std::string_view kKey = "\"event\":\"";
    const size_t start = line.find(kKey);
    if (start == std::string::npos) return {};
    std::string out;
    for (size_t i = start + kKey.size(); i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) out.push_back(line[i++]);
        out.push_back(line[i]);
    }
    return out;
}

}  // namespace

AuditRecord::AuditRecord(std::string_view event) : event_(bounded(event, kMaxFieldNameBytes)) {}

AuditRecord& AuditRecord::add(std::string_view field, std::string_view value) {
    fields_.insert_or_assign(bounded(field, kMaxFieldNameBytes), bounded(value));
    return *this;
}

AuditRecord& AuditRecord::add(std::string_view field, long long value) {
    fields_.insert_or_assign(bounded(field, kMaxFieldNameBytes), value);
    return *this;
}

AuditRecord& AuditRecord::add(std::string_view field, bool value) {
    fields_.insert_or_assign(bounded(field, kMaxFieldNameBytes), value);
    return *this;
}

AuditRecord& AuditRecord::peer(const policy::Peer& p) {
    peer_ = p;
    return *this;
}

std::string AuditRecord::json() const {
    nlohmann::ordered_json j;
    j["ts"] = utc_timestamp();
    j["event"] = event_;
    if (peer_) {
        nlohmann::ordered_json p;
        p["uid"] = peer_->uid;
        p["gid"] = peer_->gid;
        p["pid"] = peer_->pid;
        p["exe"] = bounded(peer_->exe);
        p["unit"] = bounded(peer_->unit);
        j["peer"] = std::move(p);
    }
    for (const auto& [name, value] : fields_) {
        // A field never replaces ts, event or peer.
        const std::string key = j.contains(name) ? name + "_" : name;
        std::visit([&](const auto& v) { j[key] = v; }, value);
    }
    return harden(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

AuditLog::AuditLog(AuditConfig cfg) : cfg_(std::move(cfg)) {
    const std::string& t = cfg_.target;
    if (t != "auto" && t != "journal" && t != "file" && t != "both" && t != "off")
        throw std::runtime_error("audit target \"" + t +
                                 "\" is not one of auto, journal, file, both, off");
    if ((t == "file" || t == "both") && cfg_.file.empty())
        throw std::runtime_error("audit target \"" + t + "\" needs an audit file");
    if (cfg_.on_failure != "continue" && cfg_.on_failure != "deny")
        throw std::runtime_error("audit on_failure \"" + cfg_.on_failure + "\" is not one of continue, deny");
    journal_ = t == "journal" || t == "both" || (t == "auto" && journal_present());
    const bool use_file = file_in_use(cfg_, journal_);
    if (t == "auto" && !journal_ && !use_file)
        log::warning("audit: no journal and no [audit] file; audit records are not kept");
    if (use_file) fd_ = open_audit_file(cfg_.file);
    enabled_ = journal_ || use_file;
}

AuditLog::~AuditLog() {
    if (fd_ >= 0) ::close(fd_);
}

bool AuditLog::write(const AuditRecord& record) {
    // fd_ may change under the mutex (reopen), but whether there is a file never does.
    if (!enabled_) return true;
    const std::string line = record.json();

    std::lock_guard lock(mu_);
    std::string failure;
    if (journal_ && !journal_present()) {
        // sd_journal_sendv() reports success when the journal socket is missing.
        failure = std::string("audit: the journal is not running (no ") + kJournalSocket + ")";
    } else if (journal_) {
        const std::string message = "MESSAGE=" + line;
        const std::string ident = "SYSLOG_IDENTIFIER=keychaind-audit";
        const std::string ev = "KEYCHAIND_EVENT=" + event_of(line);
        const std::string prio = "PRIORITY=6";
        iovec iov[4];
        const std::string* parts[4] = {&message, &ident, &ev, &prio};
        for (size_t i = 0; i < 4; ++i) {
            iov[i].iov_base = const_cast<char*>(parts[i]->data());
            iov[i].iov_len = parts[i]->size();
        }
        const int rc = sd_journal_sendv(iov, 4);
        if (rc < 0)
            failure = "audit: cannot send to the journal: " + std::string(std::strerror(-rc));
    }
    if (fd_ >= 0) {
        const int err = append_line(fd_, line + "\n");
        if (err != 0)
            failure += (failure.empty() ? "" : "; ") + ("audit: cannot write " + cfg_.file + ": ") +
                       std::strerror(err);
    }
    if (!failure.empty()) {
        if (!failing_)
            log::error(failure + (cfg_.deny_on_failure()
                                      ? "; requests are refused until records can be written (on_failure = \"deny\")"
                                      : "; serving continues"));
        failing_ = true;
        return false;
    }
    if (failing_) {
        failing_ = false;
        log::info("audit: records are written again");
    }
    return true;
}

void AuditLog::reopen() {
    std::lock_guard lock(mu_);
    if (fd_ < 0) return;
    // The new file first: if it cannot be opened, records keep going to the old one.
    int fresh = -1;
    try {
        fresh = open_audit_file(cfg_.file);
    } catch (const std::exception& e) {
        log::error(std::string("audit: ") + e.what() + "; still writing to the file opened before");
        return;
    }
    ::close(fd_);
    fd_ = fresh;
}

}  // namespace keychaind
