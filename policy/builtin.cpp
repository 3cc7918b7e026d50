// The built-in policy, used when no policy file exists: the socket's mode and group decide who
// gets in, root and the daemon's user administer.
#include "policy/rule.h"

namespace keychaind::policy {

std::shared_ptr<const Policy> Policy::builtin(uid_t daemon_uid) {
    auto policy = std::make_shared<Policy>();
    policy->source_ = "built-in";

    Rule admin;
    admin.name = "built-in: root and the daemon's user";
    admin.peer.uids = std::vector<uint32_t>{0};
    if (daemon_uid != 0) admin.peer.uids->push_back(daemon_uid);
    admin.operations = kAllOperations;
    admin.keys.any = true;
    policy->rules_.push_back(std::move(admin));

    Rule users;
    users.name = "built-in: every peer";
    users.peer.any = true;
    users.operations = kAllOperations & ~admin_operations();
    users.keys.any = true;
    policy->rules_.push_back(std::move(users));

    DeviceRule devices;
    devices.name = "built-in: every device";
    devices.match.any = true;
    policy->device_rules_.push_back(std::move(devices));
    return policy;
}

}  // namespace keychaind::policy
