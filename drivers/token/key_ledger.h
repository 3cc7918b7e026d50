// KeyLedger: the token source's door to the keychain — every key a token adds or loses goes
// through it, so a source that was stopped (reload, shutdown) never touches the keychain again.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "core/key_source.h"
#include "core/keychain.h"

namespace keychaind::token {

inline constexpr const char* kOriginKind = "token";

class KeyLedger {
public:
    // The keychain keys go to (the first scan names it).
    void attach(Keychain& keychain);
    // Adds key with origin ("token", location, tethered); nullopt when stopped or not attached.
    std::optional<Keychain::AddOutcome> add(std::shared_ptr<const Key> key, const std::string& location,
                                            const std::string& token_name);
    // Detaches these locations; returns how many keys that dropped.
    size_t detach(const std::set<std::string>& locations, const std::optional<AbsentReason>& why);
    // No more adds or detaches; the keys added so far are detached, absent with a TOKEN_ERROR that
    // says their token is being reopened (a reload's new source adds them again).
    void stop();
    bool stopped() const;
    // Token arrivals and removals go to the audit log through here too.
    void set_audit(std::function<void(const SourceEvent&)> sink);
    void audit(const SourceEvent& event) const;

private:
    mutable std::mutex mu_;
    Keychain* keychain_ = nullptr;
    bool stopped_ = false;
    std::map<std::string, std::string> added_;  // location -> token name
    std::function<void(const SourceEvent&)> audit_;
};

}  // namespace keychaind::token
