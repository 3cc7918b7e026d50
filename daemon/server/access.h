// Access: the one place a request is checked against the policy, rate-limited and audited,
// whatever the key's source (OpenSSH's CVE-2023-28531 came from a second path).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "audit/audit_log.h"
#include "core/keychain.h"
#include "policy/policy.h"
#include "protocol/wire.h"
#include "server/peer_identity.h"

namespace keychaind {

// Who sends a request: the identity taken at connect and the policy's view of that peer.
struct Caller {
    std::shared_ptr<const PeerIdentity> identity;
    std::shared_ptr<const policy::Policy> policy;
    std::shared_ptr<const policy::Policy::PeerView> view;  // of `policy`
};

// The policy operation a request is decided as (STATUS counts as `list`).
policy::Operation policy_operation(wire::Opcode op);
// What a policy rule sees of a key.
policy::KeyFacts key_facts(const KeyInfo& info);

class Access {
public:
    explicit Access(AuditLog* audit) : audit_(audit) {}

    // Before any key is looked up: refuses a peer whose identity is incomplete, or who has no
    // rule that could allow `op`; decides operations that involve no key. `key_text` names the
    // key the request asks for, for the DENIED message ("" when none); called only on a denial,
    // so an allowed request builds no text. Throws DENIED or BUSY.
    void check_peer(const Caller& caller, wire::Opcode op, const std::function<std::string()>& key_text);
    // After the key is found: the decision on this key. Throws DENIED (naming the operation and
    // the key, nothing about the rules) or BUSY (the rule's rate).
    void check_key(const Caller& caller, wire::Opcode op, const KeyInfo& key);
    // The same, on the request path: the facts are the keychain's, made once per key change.
    void check_key(const Caller& caller, wire::Opcode op, const KeyDescription& key);
    // LIST_KEYS and SUBSCRIBE show only keys the peer may see; no audit line per key.
    bool may_see(const Caller& caller, policy::Operation op, const KeyInfo& key) const;
    // One "decision" audit line; `reason` adds why, when the rule alone does not say it.
    // Returns false when the line could not be written and [audit] on_failure = "deny": the
    // request must then be refused.
    bool audit_decision(const Caller& caller, wire::Opcode op, const KeyInfo* key, bool allowed,
                        std::string_view rule, std::string_view reason = {});
    void audit(const AuditRecord& record) {
        if (audit_ != nullptr) audit_->write(record);
    }
    bool auditing() const { return audit_ != nullptr && audit_->enabled(); }
    // A "decision" line the operation writes itself (LIST_KEYS, with keys_shown). Throws DENIED
    // when it cannot be written and [audit] on_failure = "deny".
    void audit_own_decision(wire::Opcode op, const AuditRecord& record);

private:
    // Writes the record; false when it was lost and [audit] on_failure = "deny" (the request must
    // then be refused). audit_ must be set.
    bool recorded(const AuditRecord& record);
    void enforce_rate(const Caller& caller, wire::Opcode op, const policy::Decision& d);
    void decide_key(const Caller& caller, wire::Opcode op, const KeyInfo& key, const policy::KeyFacts& facts);

    AuditLog* audit_;
    // Token buckets of rules with a rate, per (rule index, uid, policy).
    struct Bucket {
        double tokens = 0;
        std::chrono::steady_clock::time_point last;
    };
    std::mutex rate_mu_;
    const void* rate_policy_ = nullptr;  // buckets belong to one policy; a reload resets them
    std::map<std::pair<size_t, uid_t>, Bucket> buckets_;
};

}  // namespace keychaind
