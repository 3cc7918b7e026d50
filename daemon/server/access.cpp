#include "server/access.h"

#include "core/error.h"
#include "core/log.h"

namespace keychaind {

using policy::Operation;
using wire::Opcode;

Operation policy_operation(Opcode op) {
    switch (op) {
        case Opcode::Status:
        case Opcode::ListKeys: return Operation::List;
        case Opcode::GetPublic: return Operation::Public;
        case Opcode::Sign: return Operation::Sign;
        case Opcode::Decrypt: return Operation::Decrypt;
        case Opcode::GenerateDataKey: return Operation::GenDataKey;
        case Opcode::Wrap: return Operation::Wrap;
        case Opcode::Unwrap: return Operation::Unwrap;
        case Opcode::Rewrap: return Operation::Rewrap;
        case Opcode::Discover: return Operation::Discover;
        case Opcode::Provide: return Operation::Provide;
        case Opcode::Forget: return Operation::Forget;
        case Opcode::Lock: return Operation::Lock;
        case Opcode::Unlock: return Operation::Unlock;
        case Opcode::Wait: return Operation::Wait;
        case Opcode::Subscribe: return Operation::Subscribe;
        default: break;
    }
    throw KeychainError(ErrorCode::Internal, "no policy operation for opcode " + std::to_string(static_cast<int>(op)));
}

policy::KeyFacts key_facts(const KeyInfo& info) {
    return policy::KeyFacts{info.id.hex(), info.label, info.sources};
}

namespace {

std::string key_text(const KeyInfo& key) {
    if (key.label.empty()) return "key " + key.id.hex();
    return "key " + key.id.hex() + " (\"" + log::escape(key.label, 128) + "\")";
}

[[noreturn]] void deny(Opcode op, const std::string& what, std::string_view why = {}) {
    std::string m(wire::opcode_name(op));
    if (!what.empty()) m += " on " + what;
    m += " denied";
    if (!why.empty()) m += ": " + std::string(why);
    throw KeychainError(ErrorCode::Denied, m);
}

// [audit] on_failure = "deny": an allowed request whose decision was not recorded (fail closed).
constexpr std::string_view kNotAudited = "the audit log cannot be written";

}  // namespace

bool Access::audit_decision(const Caller& caller, Opcode op, const KeyInfo* key, bool allowed,
                            std::string_view rule, std::string_view reason) {
    if (!auditing()) return true;
    AuditRecord r("decision");
    r.peer(caller.identity->peer)
        .add("op", policy::operation_name(policy_operation(op)))
        .add("result", allowed ? "allow" : "deny")
        .add("rule", rule);
    if (key != nullptr) r.add("key_id", key->id.hex()).add("label", key->label);
    if (!reason.empty()) r.add("reason", reason);
    return recorded(r);
}

bool Access::recorded(const AuditRecord& record) {
    return audit_->write(record) || !audit_->config().deny_on_failure();
}

void Access::check_peer(const Caller& caller, Opcode op, const std::function<std::string()>& key_selector) {
    const Operation pop = policy_operation(op);
    const auto what = [&key_selector] {
        std::string s = key_selector();
        return s.empty() ? s : "key " + s;
    };
    if (!caller.identity->established()) {
        audit_decision(caller, op, nullptr, false, "peer identity not established", caller.identity->error);
        deny(op, what());
    }
    if (policy::is_key_operation(pop)) {
        if (!caller.view->may_ever(pop)) {
            audit_decision(caller, op, nullptr, false, "default deny");
            deny(op, what());
        }
        return;  // decided once the key is known
    }
    const policy::Decision d = caller.view->decide(pop, nullptr);
    const bool recorded = audit_decision(caller, op, nullptr, d.allowed, d.rule);
    if (!d.allowed) deny(op, what());
    if (!recorded) deny(op, what(), kNotAudited);
    enforce_rate(caller, op, d);
}

void Access::check_key(const Caller& caller, Opcode op, const KeyInfo& key) {
    decide_key(caller, op, key, key_facts(key));
}

void Access::check_key(const Caller& caller, Opcode op, const KeyDescription& key) {
    decide_key(caller, op, key.info, key.facts);
}

void Access::decide_key(const Caller& caller, Opcode op, const KeyInfo& key, const policy::KeyFacts& facts) {
    const policy::Decision d = caller.view->decide(policy_operation(op), &facts);
    const bool recorded = audit_decision(caller, op, &key, d.allowed, d.rule);
    if (!d.allowed) deny(op, key_text(key));
    if (!recorded) deny(op, key_text(key), kNotAudited);
    enforce_rate(caller, op, d);
}

void Access::audit_own_decision(Opcode op, const AuditRecord& record) {
    if (audit_ != nullptr && !recorded(record)) deny(op, {}, kNotAudited);
}

bool Access::may_see(const Caller& caller, Operation op, const KeyInfo& key) const {
    const policy::KeyFacts facts = key_facts(key);
    return caller.view->decide(op, &facts).allowed;
}

void Access::enforce_rate(const Caller& caller, Opcode op, const policy::Decision& d) {
    if (d.rate == 0 || !d.rule_index) return;
    const auto now = std::chrono::steady_clock::now();
    bool refused = false;
    {
        std::lock_guard lk(rate_mu_);
        const void* current = caller.policy.get();
        if (current != rate_policy_) {
            buckets_.clear();
            rate_policy_ = current;
        }
        auto [it, fresh] = buckets_.try_emplace({*d.rule_index, caller.identity->uid()});
        Bucket& b = it->second;
        const double rate = d.rate;
        if (fresh) {
            b.tokens = rate;  // a full second's burst
        } else {
            const double dt = std::chrono::duration<double>(now - b.last).count();
            b.tokens = std::min(rate, b.tokens + dt * rate);
        }
        b.last = now;
        if (b.tokens >= 1.0) {
            b.tokens -= 1.0;
        } else {
            refused = true;
        }
    }
    if (!refused) return;
    if (auditing()) {
        AuditRecord r("busy");
        r.peer(caller.identity->peer)
            .add("op", policy::operation_name(policy_operation(op)))
            .add("quota", "rate")
            .add("rule", d.rule)
            .add("limit", static_cast<long long>(d.rate));
        audit_->write(r);
    }
    throw KeychainError(ErrorCode::Busy, std::string(wire::opcode_name(op)) + ": more than " +
                                             std::to_string(d.rate) + " requests per second");
}

}  // namespace keychaind
