// PeerIdentity: who is on the other end of a connection, taken once at accept.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace keychaind {

struct PeerIdentity {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    std::string text() const {
        return "pid=" + std::to_string(pid) + " uid=" + std::to_string(uid) + " gid=" + std::to_string(gid);
    }
};

// SO_PEERCRED of a connected Unix socket; nullopt if the kernel cannot tell (deny then).
std::optional<PeerIdentity> peer_identity_of(int fd);

}  // namespace keychaind
