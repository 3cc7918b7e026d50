// Keychain: the session's set of keys, shared by the event loop and the workers.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/key.h"
#include "policy/policy.h"

namespace keychaind {

// What LIST_KEYS, WAIT and events report of a key: never material.
struct KeyInfo {
    KeyId id;
    std::string label;
    KeyKind kind = KeyKind::Aes256;
    unsigned bits = 0;
    uint8_t usages = 0;
    std::vector<std::string> sources;
    bool tethered = false;
    std::optional<SystemTime> expires;
    bool present = true;
};

// A present key as requests see it: its info and the facts the policy matches rules against
// (hex id, label, sources), built once per change of the entry so a request copies neither.
struct KeyDescription {
    KeyInfo info;
    policy::KeyFacts facts;
};

struct KeySelector {
    std::optional<KeyId> id;
    std::string label;  // used when id is empty
    std::string text() const { return id ? id->hex() : "label \"" + label + "\""; }
};

// Why a dropped key is absent, when that is more than "not present": a token key whose token went
// away answers TOKEN_ERROR ("key X: token \"web\" was removed"), not KEY_NOT_PRESENT.
struct AbsentReason {
    ErrorCode code = ErrorCode::KeyNotPresent;
    std::string message;  // after "key X: "; never a secret
};

enum class KeyEventType : uint8_t { Added = 1, Removed = 2 };
struct KeyEvent {
    KeyEventType type;
    KeyInfo info;
    std::string reason;  // for removals: "forget", "expired", "source removed", "shutdown"
};

class Keychain {
public:
    using Listener = std::function<void(const KeyEvent&)>;

    enum class AddOutcome { Added, OriginAdded, Unchanged, Expired };
    // Adds a key, or merges a new origin into the entry that already has this id.
    AddOutcome add(std::shared_ptr<const Key> key, const KeyOrigin& origin);

    // Throws KeychainError: NoSuchKey (never seen), KeyNotPresent (seen, now gone; or the code of
    // the AbsentReason it was detached with), BadRequest (a label that names several keys).
    std::shared_ptr<const Key> get(const KeySelector& sel) const;
    std::shared_ptr<const Key> get(const KeyId& id) const { return get(KeySelector{id, {}}); }
    // get() and the key's info in one lookup: the policy decides on its label and sources.
    // The request path's lookup: the key and its description, made when the entry last changed
    // (not per request: no copies of labels and sources). Same errors as get().
    struct Described {
        std::shared_ptr<const Key> key;
        std::shared_ptr<const KeyDescription> description;
    };
    Described get_described(const KeySelector& sel) const;
    std::optional<KeyInfo> info(const KeySelector& sel) const;  // present keys only
    std::vector<KeyInfo> list(bool include_absent) const;
    size_t size() const;

    // Drops matching keys (all when sel is null); returns how many.
    size_t forget(const KeySelector* sel, const std::string& reason = "forget");
    // Removes origins matching pred; a key none of whose remaining origins keep it is dropped.
    // With `why`, a dropped key keeps the detached sources in its absent entry (LIST_KEYS with
    // INCLUDE_ABSENT shows where it will come back from) and lookups answer why->code.
    size_t detach_origins(const std::function<bool(const KeyOrigin&)>& pred,
                          const std::optional<AbsentReason>& why = std::nullopt);
    // Drops keys whose expiry has passed; returns the next expiry still ahead.
    std::optional<SystemTime> drop_expired(SystemTime now);
    std::optional<SystemTime> next_expiry() const;

    // Called after each change, outside the lock, on the thread that made the change.
    void set_listener(Listener l);

private:
    struct Entry {
        std::shared_ptr<const Key> key;
        std::vector<KeyOrigin> origins;
        bool retained = false;  // some non-tethered origin added it: it outlives its origins
        std::shared_ptr<const KeyDescription> description;  // redone by describe() on each change
    };
    void describe(Entry& e) const;
    struct Absent {
        KeyInfo info;
        std::optional<AbsentReason> why;
    };
    KeyInfo info_of(const Entry& e) const;
    void notify(const std::vector<KeyEvent>& events) const;
    const Entry* find_locked(const KeySelector& sel, const Absent** absent) const;
    const Entry& require_locked(const KeySelector& sel) const;  // get()'s errors
    void drop_locked(const KeyId& id, const std::string& reason, std::vector<KeyEvent>& ev,
                     const std::optional<AbsentReason>& why = std::nullopt,
                     std::vector<std::string> kept_sources = {});

    mutable std::shared_mutex mu_;
    std::unordered_map<KeyId, Entry> entries_;
    std::unordered_map<KeyId, Absent> absent_;  // dropped keys, so lookups say KEY_NOT_PRESENT
    Listener listener_;
};

}  // namespace keychaind
