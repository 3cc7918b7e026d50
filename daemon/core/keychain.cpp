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

void Keychain::describe(Entry& e) const {
    auto d = std::make_shared<KeyDescription>();
    d->info = info_of(e);
    d->facts = policy::KeyFacts{d->info.id.hex(), d->info.label, d->info.sources};
    e.description = std::move(d);
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
            Entry e{std::move(key), {origin}, !origin.tethered, nullptr};
            describe(e);
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
            if (out == AddOutcome::OriginAdded || e.description->info.tethered == e.retained) describe(e);
        }
    }
    notify(ev);
    return out;
}

const Keychain::Entry* Keychain::find_locked(const KeySelector& sel, const Absent** absent) const {
    *absent = nullptr;
    if (sel.id) {
        auto it = entries_.find(*sel.id);
        if (it != entries_.end()) return &it->second;
        if (auto a = absent_.find(*sel.id); a != absent_.end()) *absent = &a->second;
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
    if (!found) {
        const auto a = std::find_if(absent_.begin(), absent_.end(),
                                    [&](const auto& x) { return x.second.info.label == sel.label; });
        if (a != absent_.end()) *absent = &a->second;
    }
    return found;
}

const Keychain::Entry& Keychain::require_locked(const KeySelector& sel) const {
    const Absent* absent = nullptr;
    const Entry* e = find_locked(sel, &absent);
    if (e) return *e;
    if (absent && absent->why)
        throw KeychainError(absent->why->code, "key " + sel.text() + ": " + absent->why->message);
    if (absent) throw KeychainError(ErrorCode::KeyNotPresent, "key " + sel.text() + " is not present");
    throw KeychainError(ErrorCode::NoSuchKey, "no key " + sel.text());
}

std::shared_ptr<const Key> Keychain::get(const KeySelector& sel) const {
    std::shared_lock lk(mu_);
    return require_locked(sel).key;
}

Keychain::Described Keychain::get_described(const KeySelector& sel) const {
    std::shared_lock lk(mu_);
    const Entry& e = require_locked(sel);
    return {e.key, e.description};
}

std::optional<KeyInfo> Keychain::info(const KeySelector& sel) const {
    std::shared_lock lk(mu_);
    const Absent* absent = nullptr;
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
        for (const auto& [id, a] : absent_) out.push_back(a.info);
    std::sort(out.begin(), out.end(), [](const KeyInfo& a, const KeyInfo& b) {
        return a.label != b.label ? a.label < b.label : a.id.hex() < b.id.hex();
    });
    return out;
}

size_t Keychain::size() const {
    std::shared_lock lk(mu_);
    return entries_.size();
}

void Keychain::drop_locked(const KeyId& id, const std::string& reason, std::vector<KeyEvent>& ev,
                           const std::optional<AbsentReason>& why,
                           std::vector<std::string> kept_sources) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    KeyInfo i = info_of(it->second);
    i.present = false;
    i.sources = std::move(kept_sources);
    absent_[id] = Absent{i, why};
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

size_t Keychain::detach_origins(const std::function<bool(const KeyOrigin&)>& pred,
                                const std::optional<AbsentReason>& why) {
    std::vector<KeyEvent> ev;
    {
        std::unique_lock lk(mu_);
        std::vector<std::pair<KeyId, std::vector<std::string>>> drop;
        for (auto& [id, e] : entries_) {
            std::vector<std::string> detached;
            for (const auto& o : e.origins)
                if (pred(o)) detached.push_back(o.text());
            if (detached.empty()) continue;
            std::erase_if(e.origins, pred);
            describe(e);
            if (e.origins.empty() && !e.retained)
                drop.emplace_back(id, why ? std::move(detached) : std::vector<std::string>{});
        }
        for (auto& [id, sources] : drop) drop_locked(id, "source removed", ev, why, std::move(sources));
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
