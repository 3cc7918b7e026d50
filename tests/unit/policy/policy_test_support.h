// Helpers for the policy tests: policies from text, peers, keys, and one-line decisions.
#pragma once

#include <grp.h>
#include <pwd.h>

#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.h"

namespace keychaind::policy_test {

using keychaind::policy::KeyFacts;
using keychaind::policy::Operation;
using keychaind::policy::Peer;
using keychaind::policy::Policy;
using keychaind::policy::PolicyError;

inline constexpr const char* kPath = "/etc/keychaind/policy.conf";

inline std::shared_ptr<const Policy> parse(std::string_view text) {
    return Policy::parse(text, kPath);
}

// The PolicyError text, or "" when the text parses.
inline std::string parse_error(std::string_view text) {
    try {
        Policy::parse(text, kPath);
    } catch (const PolicyError& e) {
        return e.what();
    }
    return "";
}

// "/etc/keychaind/policy.conf:LINE: "
inline std::string at_line(int line) {
    return std::string(kPath) + ":" + std::to_string(line) + ": ";
}

inline Peer peer(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}, std::string exe = "",
                 std::string unit = "") {
    Peer p;
    p.uid = uid;
    p.gid = gid;
    p.pid = 4242;
    p.groups = std::move(groups);
    p.exe = std::move(exe);
    p.unit = std::move(unit);
    return p;
}

inline KeyFacts key(std::string id, std::string label, std::vector<std::string> sources = {}) {
    return KeyFacts{std::move(id), std::move(label), std::move(sources)};
}

// Key ids for the tests (32 hex digits: AES keys; 64: asymmetric keys).
inline constexpr const char* kIdA = "0123456789abcdef0123456789abcdef";
inline constexpr const char* kIdB = "fedcba9876543210fedcba9876543210";

inline bool allows(const std::shared_ptr<const Policy>& policy, const Peer& p, Operation op,
                   const KeyFacts* k = nullptr) {
    return Policy::view_for(policy, p).decide(op, k).allowed;
}
inline bool allows(const std::shared_ptr<const Policy>& policy, const Peer& p, Operation op,
                   const KeyFacts& k) {
    return allows(policy, p, op, &k);
}

inline uid_t uid_of(const char* user) {
    const passwd* pw = getpwnam(user);
    if (pw == nullptr) throw std::runtime_error(std::string("the test needs user ") + user);
    return pw->pw_uid;
}

}  // namespace keychaind::policy_test
