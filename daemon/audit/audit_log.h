// AuditLog: one JSON object per line for every policy decision, key added or dropped, device seen
// or refused, token inserted or removed. Never key bytes, PINs or passphrases; text from hostile
// sources (labels, file names, device properties) is escaped by the JSON encoding, and '%' is
// written as \u0025 so no consumer can take a field for a format string.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "policy/policy.h"

namespace keychaind {

struct AuditConfig {
    // "auto": the journal when /run/systemd/journal/socket exists, else `file`, else nothing
    // (with one warning at start); "journal", "file", "both", "off".
    std::string target = "auto";
    std::string file;  // absolute; created 0600 root, appended to, reopened on SIGHUP
    // When a record cannot be written (a full disk, the journal gone): "continue" serves on and
    // logs the failure once; "deny" refuses every request whose decision is not recorded.
    std::string on_failure = "continue";
    bool deny_on_failure() const { return on_failure == "deny"; }
};

// One audit record: "event" plus fields. Values are strings, integers or booleans.
class AuditRecord {
public:
    explicit AuditRecord(std::string_view event);  // "decision", "key-added", "device-refused", ...
    AuditRecord& add(std::string_view field, std::string_view value);
    AuditRecord& add(std::string_view field, const char* value) { return add(field, std::string_view(value)); }
    AuditRecord& add(std::string_view field, long long value);
    AuditRecord& add(std::string_view field, bool value);
    // uid, gid, pid, exe, unit of a peer, as "peer": {...}.
    AuditRecord& peer(const policy::Peer& p);
    // The JSON line (no newline): {"ts":"2026-11-23T15:04:05.123Z","event":...,...}
    std::string json() const;

private:
    std::string event_;
    std::map<std::string, std::variant<std::string, long long, bool>, std::less<>> fields_;
    std::optional<policy::Peer> peer_;
};

class AuditLog {
public:
    // Throws std::runtime_error naming the file when it cannot be opened.
    explicit AuditLog(AuditConfig cfg);
    ~AuditLog();
    // Thread-safe; a write failure is logged (once per failure streak, and its end), never
    // thrown. Returns false when the record could not be written; what that means for the request
    // is the caller's, by config().on_failure (docs/policy.md).
    bool write(const AuditRecord& record);
    // SIGHUP: reopens the file (log rotation).
    void reopen();
    const AuditConfig& config() const { return cfg_; }
    // False when records go nowhere ("off", or "auto" without journal or file): callers skip
    // building them, so a request with audit off formats nothing.
    bool enabled() const { return enabled_; }

private:
    AuditConfig cfg_;
    std::mutex mu_;
    int fd_ = -1;
    bool journal_ = false;
    bool failing_ = false;
    bool enabled_ = false;
};

}  // namespace keychaind
