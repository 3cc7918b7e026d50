// Private mount namespace, staging tmpfs, and the read-only RAII mount of one device.
#include "media/private_mount.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/log.h"

namespace keychaind::media {
namespace {

// Never changes a medium's content, never runs or trusts anything on it.
constexpr unsigned long kMountFlags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOSYMFOLLOW;

PrivateMountSetup& setup_state() {
    static PrivateMountSetup s{
        false, {}, "[devices] was off when keychaind started; restart it to read devices"};
    return s;
}

std::string errno_text(const char* what) {
    const int err = errno;
    char buf[128];
    return std::string(what) + ": " + strerror_r(err, buf, sizeof buf);
}

std::string try_enter(const std::string& staging_dir) {
    if (unshare(CLONE_NEWNS) != 0) return errno_text("unshare(CLONE_NEWNS)");
    // Slave, not private: mounts the host makes later (a desktop's udisks) still reach us, so we
    // can read through them; ours never travel the other way.
    if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
        return errno_text("making / a slave mount");
    if (mkdir(staging_dir.c_str(), 0700) != 0 && errno != EEXIST)
        return errno_text(("creating " + staging_dir).c_str());
    struct stat st {};
    if (lstat(staging_dir.c_str(), &st) != 0)
        return errno_text(("examining " + staging_dir).c_str());
    if (!S_ISDIR(st.st_mode)) return staging_dir + " is not a directory";
    if (st.st_uid != geteuid()) return staging_dir + " is not owned by the daemon's user";
    if (mount("keychaind", staging_dir.c_str(), "tmpfs",
              MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOSYMFOLLOW,
              "mode=0700,size=1m,nr_inodes=4096") != 0)
        return errno_text(("mounting a tmpfs at " + staging_dir).c_str());
    return {};
}

}  // namespace

const PrivateMountSetup& enter_private_mount_namespace(const std::string& staging_dir) {
    static bool tried = false;
    PrivateMountSetup& s = setup_state();
    if (tried) return s;
    tried = true;
    s.staging_dir = staging_dir;
    s.error = try_enter(staging_dir);
    s.ready = s.error.empty();
    return s;
}

const PrivateMountSetup& private_mount_setup() { return setup_state(); }

std::string mount_data_for(const std::string& fs_type) {
    if (fs_type == "ext3" || fs_type == "ext4") return "noload,errors=remount-ro";
    if (fs_type == "ext2") return "errors=remount-ro";
    if (fs_type == "btrfs") return "rescue=nologreplay";
    if (fs_type == "xfs") return "norecovery";
    return {};
}

PrivateMount::PrivateMount(const std::string& staging_dir, const std::string& devnode,
                           const std::string& fs_type) {
    std::string templ = staging_dir + "/m-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr)
        throw std::runtime_error(errno_text("creating a mount point"));
    const std::string data = mount_data_for(fs_type);
    if (mount(devnode.c_str(), templ.c_str(), fs_type.c_str(), kMountFlags,
              data.empty() ? nullptr : data.c_str()) != 0) {
        const std::string why = errno_text("mount");
        rmdir(templ.c_str());
        throw std::runtime_error(why);
    }
    path_ = std::move(templ);
}

PrivateMount::~PrivateMount() {
    if (umount2(path_.c_str(), UMOUNT_NOFOLLOW) != 0) {
        // Something still holds it (it should not: every descriptor is closed by now). Detach it
        // from the tree at once; the kernel finishes when the last user lets go.
        log::warning(errno_text(("unmounting " + path_).c_str()) + "; detaching it lazily");
        if (umount2(path_.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0)
            log::error(errno_text(("detaching " + path_).c_str()));
    }
    rmdir(path_.c_str());
}

}  // namespace keychaind::media
