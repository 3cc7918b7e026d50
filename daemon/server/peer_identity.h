// PeerIdentity: who is on the other end of a connection, taken once at accept and never again
// (a client that execs another program keeps the identity it connected with).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "policy/policy.h"

namespace keychaind {

struct PeerIdentity {
    policy::Peer peer;  // uid, gid, pid, groups, exe, unit
    // Empty when the identity is complete; otherwise why it could not be established (the
    // connection is kept so the client learns DENIED, but every request is refused).
    std::string error;

    bool established() const { return error.empty(); }
    uid_t uid() const { return peer.uid; }
    // "pid=1234 uid=33 gid=33 exe=/usr/sbin/nginx unit=nginx.service" (escaped), for log lines.
    std::string text() const;
};

// SO_PEERCRED (uid, gid, pid) and SO_PEERGROUPS of a connected Unix socket, then a pidfd from
// SO_PEERPIDFD (Linux >= 6.5) or pidfd_open(pid) checked against the credentials, and through it
// /proc/<pid>/exe and the systemd unit from /proc/<pid>/cgroup, re-checking the pidfd afterwards
// so a recycled pid cannot lend its identity. nullopt when not even SO_PEERCRED answers.
std::optional<PeerIdentity> peer_identity_of(int fd);

// The systemd unit of a process from its /proc/<pid>/cgroup text: the first component below the
// slices, as systemd itself reads it ("0::/system.slice/nginx.service" → "nginx.service";
// ".../user@1000.service/app.slice/x.service" → "user@1000.service"); empty when there is none.
std::string systemd_unit_from_cgroup(std::string_view cgroup_file_text);

}  // namespace keychaind
