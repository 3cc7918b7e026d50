// Policy decisions: the rules that match a peer, then operation and key, first match wins.
#include "policy/rule.h"

namespace keychaind::policy {

Policy::Policy() = default;
Policy::~Policy() = default;

const std::string& Policy::source() const { return source_; }
const std::vector<std::string>& Policy::warnings() const { return warnings_; }
size_t Policy::rule_count() const { return rules_.size(); }
size_t Policy::device_rule_count() const { return device_rules_.size(); }

Policy::PeerView Policy::view_for(const std::shared_ptr<const Policy>& policy, const Peer& peer) {
    PeerView view;
    view.policy_ = policy;
    view.peer_ = peer;
    if (!policy) return view;
    uint32_t settled = 0;  // operations an earlier rule of this peer decides for every key
    for (size_t i = 0; i < policy->rules_.size(); ++i) {
        const Rule& r = policy->rules_[i];
        if (!peer_matches(r.peer, peer, nullptr)) continue;
        view.rules_.push_back(i);
        if (r.allow) view.may_ever_ |= r.operations & ~settled;
        settled |= r.keys.any ? r.operations : r.operations & ~key_operations();
    }
    return view;
}

bool Policy::PeerView::may_ever(Operation op) const { return (may_ever_ & op_bit(op)) != 0; }

Decision Policy::PeerView::decide(Operation op, const KeyFacts* key, bool with_trace) const {
    Decision d;
    d.rule = "default deny";
    const bool key_op = is_key_operation(op);
    if (!policy_ || (key_op && key == nullptr)) {
        if (with_trace)
            d.trace.push_back(!policy_ ? "no policy"
                                       : "no key given for " + std::string(operation_name(op)));
        return d;
    }
    const auto decided_by = [&](size_t i) {
        const Rule& r = policy_->rules_[i];
        d.allowed = r.allow;
        d.rule = r.name;
        d.rule_index = i;
        d.rate = r.allow ? r.rate : 0;
    };
    const uint32_t bit = op_bit(op);

    if (!with_trace) {
        for (const size_t i : rules_) {
            const Rule& r = policy_->rules_[i];
            if ((r.operations & bit) == 0) continue;
            if (key_op && !key_matches(r.keys, *key, nullptr)) continue;
            decided_by(i);
            return d;
        }
        return d;
    }

    // The trace walks every rule, so it can say why the ones for other peers did not apply.
    const std::string name(operation_name(op));
    std::string why;
    for (size_t i = 0; i < policy_->rules_.size(); ++i) {
        const Rule& r = policy_->rules_[i];
        const std::string rule = "rule " + quoted(r.name) + ": ";
        if (!peer_matches(r.peer, peer_, &why)) {
            d.trace.push_back(rule + "peer does not match (" + why + ")");
            continue;
        }
        d.trace.push_back(rule + "peer matches (" + why + ")");
        if ((r.operations & bit) == 0) {
            d.trace.push_back(rule + "operation " + name + " is not one of " +
                              operation_list(r.operations));
            continue;
        }
        const std::string verdict = r.allow ? "allow" : "deny";
        const std::string step = rule + "operation " + name + (r.allow ? " allowed" : " denied");
        if (!key_op) {
            d.trace.push_back(step + " → " + verdict);
            decided_by(i);
            return d;
        }
        if (!key_matches(r.keys, *key, &why)) {
            d.trace.push_back(step + ", but " + why + " → next rule");
            continue;
        }
        d.trace.push_back(step + ", " + why + " → " + verdict);
        decided_by(i);
        return d;
    }
    return d;
}

DevicePermit Policy::device_permit(const DeviceFacts& device) const {
    for (const auto& r : device_rules_)
        if (device_matches(r.match, device)) return DevicePermit{true, r.tethered, r.name};
    return DevicePermit{false, false, "default deny"};
}

}  // namespace keychaind::policy
