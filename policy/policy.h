// Policy: who (a peer) may do what (an operation) with which key, and which removable devices may
// carry keys. Default deny; the first rule that matches decides. docs/policy.md is the reference.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace keychaind::policy {

// The operations a rule can name (docs/policy.md). STATUS is governed by `list`.
enum class Operation : uint8_t {
    Sign, Decrypt, Unwrap, Wrap, GenDataKey, Rewrap, List, Public, Wait, Subscribe,
    // the admin set
    Provide, Forget, Lock, Unlock, Discover,
};
inline constexpr size_t kOperationCount = 15;
std::string_view operation_name(Operation op);              // "gen-datakey"
std::optional<Operation> operation_from_name(std::string_view name);
bool is_admin(Operation op);
// Operations whose decision depends on a key (the others are decided on the peer alone).
bool is_key_operation(Operation op);

// Who is asking, as established once at connect (server/peer_identity.h fills it).
struct Peer {
    uid_t uid = 0;
    gid_t gid = 0;
    pid_t pid = 0;
    std::vector<gid_t> groups;  // supplementary groups (SO_PEERGROUPS), may include gid
    std::string exe;            // "/usr/sbin/nginx"; empty when unknown
    std::string unit;           // "nginx.service"; empty when not in a systemd unit or unknown
};

// What a rule may match about a key. `sources` are the key's origins as KeyOrigin::text() gives
// them: "file:/etc/keychaind/keys/a.4DKeyChain", "identity:web", "provided:uid=0",
// "device:<serial or devnode>/<fs uuid>/<file name>", "token:pkcs11:token=web;object=tls".
struct KeyFacts {
    std::string id;     // 32 hex digits (AES keys) or 64 (asymmetric keys), any case
    std::string label;
    std::vector<std::string> sources;
};

// What a device rule may match (udev properties of the block device).
struct DeviceFacts {
    std::string vendor_id;  // ID_VENDOR_ID
    std::string model_id;   // ID_MODEL_ID
    std::string serial;     // ID_SERIAL (or ID_SERIAL_SHORT)
    std::string serial_short;
    std::string fs_uuid;    // ID_FS_UUID
    std::string fs_label;   // ID_FS_LABEL
};

struct DevicePermit {
    bool allowed = false;
    bool force_tethered = false;
    std::string rule;  // the deciding rule's name, or "default deny"
};

struct Decision {
    bool allowed = false;
    // The deciding rule's name, or "default deny"; a view into the policy (the PeerView holds
    // it), so a decision copies no string.
    std::string_view rule;
    std::optional<size_t> rule_index;  // index into the policy's rules; none for default deny
    uint32_t rate = 0;                // requests per second per uid the rule allows; 0: unlimited
    // For `explain` (with_trace): one line per rule considered, in file order, e.g.
    // "rule \"db\": peer does not match (uid 33 is not 5432)".
    std::vector<std::string> trace;
};

inline constexpr const char* kDefaultPolicyPath = "/etc/keychaind/policy.conf";
inline constexpr size_t kMaxPolicyFileBytes = 1024 * 1024;

class PolicyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;  // "FILE:LINE: reason"
};

class Policy {
public:
    // Parses a policy file's text; throws PolicyError naming file, line and reason.
    // Unknown user and group names are not an error: that part of the rule never matches, and
    // `warnings` says so (logged at load, printed by `keychainctl policy check`).
    static std::shared_ptr<const Policy> parse(std::string_view text, const std::string& path);
    // Reads the file with O_NOFOLLOW; refuses one that is not a regular file, is larger than
    // 1 MiB, or is writable by anyone but root (or the daemon's own uid). Throws PolicyError.
    static std::shared_ptr<const Policy> load(const std::string& path);
    // The policy without a file: the daemon's uid and root may do everything; any peer that can
    // open the socket (its mode and group decide) may do every non-admin operation on every key;
    // every device the [devices] config lets through may carry keys.
    static std::shared_ptr<const Policy> builtin(uid_t daemon_uid);

    const std::string& source() const;  // the path, or "built-in"
    // "PATH:LINE: rule \"x\": no user \"postgres\" on this system; the rule never matches"
    const std::vector<std::string>& warnings() const;
    size_t rule_count() const;         // [[rule]] tables
    size_t device_rule_count() const;  // [[device]] tables

    // The rules whose peer part matches `peer`, in order: computed once per connection.
    class PeerView {
    public:
        // key: required for key operations (is_key_operation), ignored otherwise.
        Decision decide(Operation op, const KeyFacts* key, bool with_trace = false) const;
        // True when some rule could allow `op` for this peer on some key: a peer that has no
        // such rule is refused before the key is looked up (no NO_SUCH_KEY probing). An allow
        // rule hidden behind an earlier deny rule of the same peer that covers `op` for every key
        // does not count.
        bool may_ever(Operation op) const;

    private:
        friend class Policy;
        std::shared_ptr<const Policy> policy_;
        std::vector<size_t> rules_;  // indices of the rules whose peer part matches
        uint32_t may_ever_ = 0;      // bit per Operation, computed by view_for
        Peer peer_;                  // for the trace, which also explains the rules that do not match
    };
    static PeerView view_for(const std::shared_ptr<const Policy>& policy, const Peer& peer);

    DevicePermit device_permit(const DeviceFacts& device) const;

    struct Rule;   // policy/rule.h
    struct DeviceRule;
    ~Policy();
    Policy();

private:
    std::string source_;
    std::vector<std::string> warnings_;
    std::vector<Rule> rules_;
    std::vector<DeviceRule> device_rules_;
};

}  // namespace keychaind::policy
