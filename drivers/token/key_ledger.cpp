// KeyLedger: adds and detaches token origins unless the source was stopped.
#include "token/key_ledger.h"

namespace keychaind::token {

void KeyLedger::attach(Keychain& keychain) {
    std::lock_guard lk(mu_);
    keychain_ = &keychain;
}

std::optional<Keychain::AddOutcome> KeyLedger::add(std::shared_ptr<const Key> key, const std::string& location,
                                                   const std::string& token_name) {
    std::lock_guard lk(mu_);
    if (stopped_ || keychain_ == nullptr) return std::nullopt;
    added_[location] = token_name;
    return keychain_->add(std::move(key), KeyOrigin{kOriginKind, location, true});
}

size_t KeyLedger::detach(const std::set<std::string>& locations, const std::optional<AbsentReason>& why) {
    std::lock_guard lk(mu_);
    if (stopped_ || keychain_ == nullptr || locations.empty()) return 0;
    for (const auto& l : locations) added_.erase(l);
    return keychain_->detach_origins(
        [&](const KeyOrigin& o) { return o.kind == kOriginKind && locations.count(o.location) != 0; }, why);
}

void KeyLedger::stop() {
    std::lock_guard lk(mu_);
    if (stopped_) return;
    stopped_ = true;
    if (keychain_ == nullptr) return;
    // Grouped by token, so each key's reason names its own token.
    std::map<std::string, std::set<std::string>> by_token;
    for (const auto& [location, token] : added_) by_token[token].insert(location);
    for (const auto& entry : by_token) {
        const auto& locations = entry.second;
        keychain_->detach_origins(
            [&](const KeyOrigin& o) { return o.kind == kOriginKind && locations.count(o.location) != 0; },
            AbsentReason{ErrorCode::TokenError, "token \"" + entry.first + "\" is being reopened"});
    }
    added_.clear();
}

bool KeyLedger::stopped() const {
    std::lock_guard lk(mu_);
    return stopped_;
}

void KeyLedger::set_audit(std::function<void(const SourceEvent&)> sink) {
    std::lock_guard lk(mu_);
    audit_ = std::move(sink);
}

void KeyLedger::audit(const SourceEvent& event) const {
    std::function<void(const SourceEvent&)> sink;
    {
        std::lock_guard lk(mu_);
        sink = audit_;
    }
    if (sink) sink(event);
}

}  // namespace keychaind::token
