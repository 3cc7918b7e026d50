// Keychain: add/merge, lookup by id or label, forget, detach, expiry.
#include "core/keychain.h"

#include <algorithm>
#include <mutex>

#include "core/error.h"

namespace keychaind {

KeyInfo Keychain::info_of(const Entry& e) const {
    KeyInfo i;
    const Key& k = *e.key;
    i.id = k.id();
    i.label = k.label();
    i.kind = k.kind();
    i.bits = k.bits();
    i.usages = k.usages();
    for (const auto& o : e.origins) i.sources.push_back(o.text());
    i.tethered = !e.retained;
    i.expires = k.expires();
    i.present = true;
    return i;
}

void Keychain::set_listener(Listener l) {
    std::unique_lock lk(mu_);
    listener_ = std::move(l);
}

void Keychain::notify(const std::vector<KeyEvent>& events) const {
    Listener l;
    {
        std::shared_lock lk(mu_);
        l = listener_;
    }
    if (!l) return;
    for (const auto& e : events) l(e);
}

Keychain::AddOutcome Keychain::add(std::shared_ptr<const Key> key, const KeyOrigin& origin) {
    if (key->expires() && *key->expires() <= std::chrono::system_clock::now())
        return AddOutcome::Expired;
    std::vector<KeyEvent> ev;
    AddOutcome out;
    {
        std::unique_lock lk(mu_);
        auto it = entries_.find(key->id());
        if (it == entries_.end()) {
            Entry e{std::move(key), {origin}, !origin.tethered};
            absent_.erase(e.key->id());
            ev.push_back({KeyEventType::Added, info_of(e), {}});
            entries_.emplace(e.key->id(), std::move(e));
            out = AddOutcome::Added;
        } else {
            Entry& e = it->second;
            if (std::find(e.origins.begin(), e.origins.end(), origin) != e.origins.end()) {
                out = AddOutcome::Unchanged;
            } else {
                e.origins.push_back(origin);
                out = AddOutcome::OriginAdded;
            }
            e.retained = e.retained || !origin.tethered;
        }
    }
    notify(ev);
    return out;
}

const Keychain::Entry* Keychain::find_locked(const KeySelector& sel, bool* absent) const {
    *absent = false;
    if (sel.id) {
        auto it = entries_.find(*sel.id);
        if (it != entries_.end()) return &it->second;
        *absent = absent_.count(*sel.id) != 0;
        return nullptr;
    }
    const Entry* found = nullptr;
    size_t matches = 0;
    for (const auto& [id, e] : entries_) {
        if (e.key->label() == sel.label) {
            found = &e;
            ++matches;
        }
    }
    if (matches > 1)
        throw KeychainError(ErrorCode::BadRequest, "label \"" + sel.label + "\" names " +
                                                       std::to_string(matches) +
                                                       " keys; select by id");
    if (!found)
        *absent = std::any_of(absent_.begin(), absent_.end(),
                              [&](const auto& a) { return a.second.label == sel.label; });
    return found;
}

std::shared_ptr<const Key> Keychain::get(const KeySelector& sel) const {
    std::shared_lock lk(mu_);
    bool absent = false;
    const Entry* e = find_locked(sel, &absent);
    if (e) return e->key;
    if (absent) throw KeychainError(ErrorCode::KeyNotPresent, "key " + sel.text() + " is not present");
    throw KeychainError(ErrorCode::NoSuchKey, "no key " + sel.text());
}

std::optional<KeyInfo> Keychain::info(const KeySelector& sel) const {
    std::shared_lock lk(mu_);
    bool absent = false;
    const Entry* e = nullptr;
    try {
        e = find_locked(sel, &absent);
    } catch (const KeychainError&) {
        return std::nullopt;
    }
    if (!e) return std::nullopt;
    return info_of(*e);
}

std::vector<KeyInfo> Keychain::list(bool include_absent) const {
    std::shared_lock lk(mu_);
    std::vector<KeyInfo> out;
    out.reserve(entries_.size());
    for (const auto& [id, e] : entries_) out.push_back(info_of(e));
    if (include_absent)
        for (const auto& [id, i] : absent_) out.push_back(i);
    std::sort(out.begin(), out.end(), [](const KeyInfo& a, const KeyInfo& b) {
        return a.label != b.label ? a.label < b.label : a.id.hex() < b.id.hex();
    });
    return out;
}

size_t Keychain::size() const {
    std::shared_lock lk(mu_);
    return entries_.size();
}

void Keychain::drop_locked(const KeyId& id, const std::string& reason, std::vector<KeyEvent>& ev) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    KeyInfo i = info_of(it->second);
    i.present = false;
    i.sources.clear();
    absent_[id] = i;
    ev.push_back({KeyEventType::Removed, std::move(i), reason});
    // The material is wiped when the last holder lets go: an operation already running on
    // another thread finishes with its own reference.
    entries_.erase(it);
}

size_t Keychain::forget(const KeySelector* sel, const std::string& reason) {
    std::vector<KeyEvent> ev;
    {
        std::unique_lock lk(mu_);
        std::vector<KeyId> ids;
        if (sel == nullptr) {
            for (const auto& [id, e] : entries_) ids.push_back(id);
        } else if (sel->id) {
            if (entries_.count(*sel->id)) ids.push_back(*sel->id);
        } else {
            for (const auto& [id, e] : entries_)
                if (e.key->label() == sel->label) ids.push_back(id);
        }
        for (const auto& id : ids) drop_locked(id, reason, ev);
    }
    notify(ev);
    return ev.size();
}

size_t Keychain::detach_origins(const std::function<bool(const KeyOrigin&)>& pred) {
    std::vector<KeyEvent> ev;
    {
        std::unique_lock lk(mu_);
        std::vector<KeyId> drop;
        for (auto& [id, e] : entries_) {
            const auto before = e.origins.size();
            std::erase_if(e.origins, pred);
            if (e.origins.size() != before && e.origins.empty() && !e.retained) drop.push_back(id);
        }
        for (const auto& id : drop) drop_locked(id, "source removed", ev);
    }
    notify(ev);
    return ev.size();
}

std::optional<SystemTime> Keychain::drop_expired(SystemTime now) {
    std::vector<KeyEvent> ev;
    {
        std::unique_lock lk(mu_);
        std::vector<KeyId> drop;
        for (const auto& [id, e] : entries_)
            if (e.key->expires() && *e.key->expires() <= now) drop.push_back(id);
        for (const auto& id : drop) drop_locked(id, "expired", ev);
    }
    notify(ev);
    return next_expiry();
}

std::optional<SystemTime> Keychain::next_expiry() const {
    std::shared_lock lk(mu_);
    std::optional<SystemTime> next;
    for (const auto& [id, e] : entries_)
        if (e.key->expires() && (!next || *e.key->expires() < *next)) next = e.key->expires();
    return next;
}

}  // namespace keychaind
