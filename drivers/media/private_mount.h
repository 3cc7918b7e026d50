// The daemon's own mount namespace and PrivateMount: a device mounted read-only where only we see
// it.
#pragma once

#include <string>

namespace keychaind::media {

struct PrivateMountSetup {
    bool ready = false;
    std::string staging_dir;  // a tmpfs of the daemon's namespace; mount points are made in it
    std::string error;        // why not ready
};

// Once per process, before any other thread exists (unshare(CLONE_NEWNS) fails in a process whose
// threads share their filesystem context): moves the process into a mount namespace of its own,
// with every mount a slave of the host's, so host mounts (udisks) still appear here but nothing
// mounted here ever appears in the host's mount table; then mounts a small tmpfs at
// `staging_dir` (created 0700 if missing) for the mount points. Later calls return the first
// result. Never throws: `error` says what failed (not root, no CAP_SYS_ADMIN, ...).
const PrivateMountSetup& enter_private_mount_namespace(const std::string& staging_dir);
// The result of enter_private_mount_namespace; not ready, with a reason, if it was never called.
const PrivateMountSetup& private_mount_setup();

// The mount(2) data string for a filesystem type (kernel driver name): options that keep the
// driver from writing to a read-only medium (no journal replay, no log recovery).
std::string mount_data_for(const std::string& fs_type);

// A device mounted ro,nosuid,nodev,noexec,nosymfollow at a fresh directory of the staging tmpfs.
// Unmounted (lazily if busy) and its directory removed when destroyed.
class PrivateMount {
public:
    // Throws std::runtime_error whose message is the reason ("mount: Invalid argument").
    PrivateMount(const std::string& staging_dir, const std::string& devnode,
                 const std::string& fs_type);
    ~PrivateMount();
    PrivateMount(const PrivateMount&) = delete;
    PrivateMount& operator=(const PrivateMount&) = delete;

    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace keychaind::media
