// Peer matching: uid, gid (primary or supplementary), user and group names, executable, unit.
#include <algorithm>

#include "policy/rule.h"

namespace keychaind::policy {
namespace {

bool contains(const std::vector<uint32_t>& ids, uint32_t id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
}

bool in_group(const Peer& p, uint32_t gid) {
    return p.gid == gid || std::find(p.groups.begin(), p.groups.end(), gid) != p.groups.end();
}

// "5432", or "one of 0, 5432"
std::string alternatives(const std::vector<uint32_t>& ids) {
    std::string out = ids.size() == 1 ? "" : "one of ";
    for (size_t i = 0; i < ids.size(); ++i) out += (i == 0 ? "" : ", ") + std::to_string(ids[i]);
    return out;
}

std::string alternatives(const std::vector<std::string>& texts) {
    std::string out = texts.size() == 1 ? "" : "one of ";
    for (size_t i = 0; i < texts.size(); ++i) out += (i == 0 ? "" : ", ") + shown(texts[i]);
    return out;
}

// "user postgres (uid 5432) or user pg (no such user)"
std::string named(const std::vector<NamedId>& ids, const char* what, const char* id_kind) {
    std::string out;
    for (const auto& n : ids) {
        if (!out.empty()) out += " or ";
        out += std::string(what) + " " + shown(n.name) +
               (n.known ? " (" + std::string(id_kind) + " " + std::to_string(n.id) + ")"
                        : " (no such " + std::string(what) + ")");
    }
    return out;
}

// "gid 33", or "gid 33 and supplementary groups 4, 24"
std::string peer_groups(const Peer& p) {
    std::string out = "gid " + std::to_string(p.gid);
    if (p.groups.empty()) return out;
    out += " and supplementary groups ";
    for (size_t i = 0; i < p.groups.size(); ++i)
        out += (i == 0 ? "" : ", ") + std::to_string(p.groups[i]);
    return out;
}

std::string group_hit(const Peer& p, uint32_t gid) {
    return (p.gid == gid ? "gid " : "supplementary group ") + std::to_string(gid);
}

void note(std::string* why, const std::string& part) {
    if (!why->empty()) *why += ", ";
    *why += part;
}

// Always false. Callers write `why != nullptr && fail(why, ...)` so that the reason is only built
// for a trace: decisions without one must not allocate.
bool fail(std::string* why, std::string reason) {
    *why = std::move(reason);
    return false;
}

bool string_field(const std::optional<std::vector<std::string>>& wanted, const std::string& have,
                  const char* field, const char* unknown, std::string* why) {
    if (!wanted) return true;
    if (std::find(wanted->begin(), wanted->end(), have) == wanted->end()) {
        if (why == nullptr) return false;
        if (have.empty())
            return fail(why, std::string(unknown) + ", need " + alternatives(*wanted));
        return fail(why,
                    std::string(field) + " " + shown(have) + " is not " + alternatives(*wanted));
    }
    if (why != nullptr) note(why, std::string(field) + " " + shown(have));
    return true;
}

}  // namespace

bool peer_matches(const PeerMatch& m, const Peer& p, std::string* why) {
    if (why != nullptr) why->clear();
    if (m.any) {
        if (why != nullptr) *why = "any peer";
        return true;
    }
    if (m.uids) {
        if (!contains(*m.uids, p.uid))
            return why != nullptr &&
                   fail(why, "uid " + std::to_string(p.uid) + " is not " + alternatives(*m.uids));
        if (why != nullptr) note(why, "uid " + std::to_string(p.uid));
    }
    if (m.users) {
        const auto hit = std::find_if(m.users->begin(), m.users->end(),
                                      [&](const NamedId& n) { return n.known && n.id == p.uid; });
        if (hit == m.users->end())
            return why != nullptr && fail(why, "uid " + std::to_string(p.uid) + " is not " +
                                                   named(*m.users, "user", "uid"));
        if (why != nullptr)
            note(why, "user " + shown(hit->name) + " = uid " + std::to_string(p.uid));
    }
    if (m.gids) {
        const auto hit = std::find_if(m.gids->begin(), m.gids->end(),
                                      [&](uint32_t g) { return in_group(p, g); });
        if (hit == m.gids->end())
            return why != nullptr &&
                   fail(why, peer_groups(p) + (p.groups.empty() ? " is not " : " do not include ") +
                                 alternatives(*m.gids));
        if (why != nullptr) note(why, group_hit(p, *hit));
    }
    if (m.groups) {
        const auto hit = std::find_if(m.groups->begin(), m.groups->end(), [&](const NamedId& n) {
            return n.known && in_group(p, n.id);
        });
        if (hit == m.groups->end())
            return why != nullptr &&
                   fail(why, peer_groups(p) + (p.groups.empty() ? " is not " : " do not include ") +
                                 named(*m.groups, "group", "gid"));
        if (why != nullptr) note(why, "group " + shown(hit->name) + " = " + group_hit(p, hit->id));
    }
    return string_field(m.exes, p.exe, "exe", "executable unknown", why) &&
           string_field(m.units, p.unit, "unit", "not in a systemd unit", why);
}

}  // namespace keychaind::policy
