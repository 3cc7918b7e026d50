// Set-up for the policy tests: a daemon with a policy file and an audit file, whose socket other
// uids may reach, and keychainctl run as those uids through setpriv (real client processes).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "child_process.h"
#include "daemon_fixture.h"

namespace keychaind::test {

struct PolicyDaemon {
    TempDir dir{"keychaind-policy"};
    std::string keys_dir;
    std::string policy_path;
    std::string audit_path;
    std::string ctl;      // a keychainctl copy every uid may run
    std::string out_dir;  // where clients of any uid may write (mode 1777)
    std::unique_ptr<DaemonProcess> daemon;

    // keychain_json: keys/test.4DKeyChain; policy: the policy file's text; extra_config: more
    // config after [daemon]'s own lines (tables only).
    PolicyDaemon(const std::string& keychain_json, const std::string& policy,
                 const std::string& extra_config = "");
    const std::string& socket() const { return daemon->socket_path(); }

    // keychainctl --socket S ARGS as uid:gid with no supplementary groups (setpriv).
    ProcessResult ctl_as(uid_t uid, gid_t gid, const std::vector<std::string>& args) const;
    // Every audit record so far, parsed; a line that is not JSON fails the test.
    std::vector<nlohmann::json> audit() const;
    std::string audit_text() const;
    // Replaces the policy file (mode 0644, owned by root).
    void write_policy(const std::string& text) const;
};

// A copy of a built program that any uid may run (the build tree may be under a 0700 directory).
std::string world_runnable_copy(const std::string& program, const TempDir& dir, const std::string& name);

// The records of `event` that hold every value of `match`, whose keys are JSON pointers
// ({"/op": "sign", "/peer/uid": 2001}).
std::vector<nlohmann::json> records_with(const std::vector<nlohmann::json>& records, const std::string& event,
                                         const nlohmann::json& match);

}  // namespace keychaind::test
