// Peer identity: credentials, supplementary groups, a pidfd and through it the executable and unit.
#include "server/peer_identity.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include "core/log.h"
#include "core/unique_fd.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5; Debian 12's headers predate it
#endif

namespace keychaind {
namespace {

constexpr size_t kMaxGroups = 65536;
constexpr size_t kMaxProcFileBytes = 64 * 1024;

// Thrown inside this file only; becomes PeerIdentity::error.
struct IdentityFailure {
    std::string reason;
};

[[noreturn]] void fail(std::string reason) { throw IdentityFailure{std::move(reason)}; }

std::string errno_text(int err) { return std::strerror(err); }

std::string proc_path(pid_t pid, std::string_view leaf) {
    return "/proc/" + std::to_string(pid) + "/" + std::string(leaf);
}

// Reads a (small, kernel-generated) file whole; nullopt with errno set when it cannot be read.
std::optional<std::string> read_bounded(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) return std::nullopt;
    std::string out;
    char buf[4096];
    while (out.size() < kMaxProcFileBytes) {
        const ssize_t n =
            ::read(fd.get(), buf, std::min(sizeof buf, kMaxProcFileBytes - out.size()));
        if (n < 0) {
            if (errno == EINTR) continue;
            return std::nullopt;
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

// The value after "Key:" on the line that starts with it, e.g. "Pid:\t1234" → "1234".
std::optional<std::string_view> field_of(std::string_view text, std::string_view key) {
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view line = text.substr(pos, end - pos);
        if (line.substr(0, key.size()) == key && line.size() > key.size() &&
            line[key.size()] == ':')
            return line.substr(key.size() + 1);
        pos = end + 1;
    }
    return std::nullopt;
}

// The whitespace-separated columns of a /proc field ("\t1000\t1000\t1000\t1000").
std::vector<long long> numbers_of(std::string_view value) {
    std::vector<long long> out;
    size_t i = 0;
    while (i < value.size()) {
        while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
        size_t j = i;
        while (j < value.size() && value[j] != ' ' && value[j] != '\t') ++j;
        if (j > i) {
            long long v = 0;
            const auto [p, ec] = std::from_chars(value.data() + i, value.data() + j, v);
            if (ec != std::errc() || p != value.data() + j) return {};
            out.push_back(v);
        }
        i = j;
    }
    return out;
}

std::vector<gid_t> peer_groups(int fd) {
    std::vector<gid_t> groups(64);
    for (int attempt = 0; attempt < 4; ++attempt) {
        auto len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
            groups.resize(len / sizeof(gid_t));
            return groups;
        }
        if (errno != ERANGE)
            fail("cannot read the peer's groups (SO_PEERGROUPS): " + errno_text(errno));
        // The kernel wrote the size it needs into len; the peer's groups may grow between tries.
        const size_t need = len / sizeof(gid_t);
        if (need > kMaxGroups)
            fail("the peer has " + std::to_string(need) + " supplementary groups; the limit is " +
                 std::to_string(kMaxGroups));
        groups.resize(std::max(need, groups.size() * 2));
    }
    fail("cannot read the peer's groups (SO_PEERGROUPS): their number kept changing");
}

// The pid the pidfd refers to in our pid namespace, from /proc/self/fdinfo: -1 once the process
// has exited, 0 when it is outside our namespace.
long long pidfd_pid(int pidfd) {
    const auto text = read_bounded("/proc/self/fdinfo/" + std::to_string(pidfd));
    if (!text) fail("cannot read the pidfd's fdinfo: " + errno_text(errno));
    const auto value = field_of(*text, "Pid");
    const auto n = value ? numbers_of(*value) : std::vector<long long>{};
    if (n.size() != 1) fail("the pidfd's fdinfo has no Pid line");
    return n[0];
}

// A pidfd is readable once its process has exited (zombie or reaped).
bool pidfd_exited(int pidfd) {
    pollfd p{pidfd, POLLIN, 0};
    int rc;
    do {
        rc = ::poll(&p, 1, 0);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) fail("cannot poll the peer's pidfd: " + errno_text(errno));
    return rc > 0 && (p.revents & (POLLIN | POLLHUP)) != 0;
}

[[noreturn]] void fail_exited() { fail("the peer exited before its identity was read"); }

// Throws unless the pidfd still names the live process `pid`.
void check_alive(int pidfd, pid_t pid) {
    if (pidfd_exited(pidfd)) fail_exited();
    const long long now = pidfd_pid(pidfd);
    if (now == -1) fail_exited();
    if (now != pid)
        fail("the peer's pidfd names pid " + std::to_string(now) + ", not the connecting pid " +
             std::to_string(pid));
}

UniqueFd peer_pidfd(int fd, const ucred& cred) {
    int pidfd = -1;
    socklen_t len = sizeof pidfd;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0) return UniqueFd(pidfd);
    const int err = errno;
    // A kernel that knows SO_PEERPIDFD answers EINVAL when the peer's process is gone (before
    // 6.16, which hands out pidfds of reaped tasks): falling back to pidfd_open(pid) would then
    // risk a recycled pid, so that is the peer having exited, not a reason to fall back.
    if (err == EINVAL) fail_exited();
    if (err == ENODATA) fail("the kernel recorded no pid for the peer (SO_PEERPIDFD)");
    if (err != ENOPROTOOPT) fail("cannot get the peer's pidfd (SO_PEERPIDFD): " + errno_text(err));

    // Before Linux 6.5: pidfd_open(pid) may open a process that reused the peer's pid, so it must
    // at least run with the credentials the peer connected with.
    const long raw = syscall(SYS_pidfd_open, cred.pid, 0);
    if (raw < 0)
        fail("cannot open a pidfd for pid " + std::to_string(cred.pid) + ": " + errno_text(errno));
    UniqueFd opened(static_cast<int>(raw));
    const std::string status_path = proc_path(cred.pid, "status");
    const auto status = read_bounded(status_path);
    if (!status) fail("cannot read " + status_path + ": " + errno_text(errno));
    const auto uids = numbers_of(field_of(*status, "Uid").value_or(""));
    const auto gids = numbers_of(field_of(*status, "Gid").value_or(""));
    if (uids.size() < 2 || gids.size() < 2) fail(status_path + " has no Uid or Gid line");
    if (uids[1] != cred.uid || gids[1] != cred.gid)
        fail("pid " + std::to_string(cred.pid) + " now runs as uid " + std::to_string(uids[1]) +
             " gid " + std::to_string(gids[1]) + ", not as the uid " + std::to_string(cred.uid) +
             " gid " + std::to_string(cred.gid) + " it connected with");
    return opened;
}

std::string peer_exe(pid_t pid) {
    const std::string path = proc_path(pid, "exe");
    std::vector<char> buf(PATH_MAX);
    const ssize_t n = ::readlink(path.c_str(), buf.data(), buf.size());
    if (n < 0) fail("cannot read " + path + ": " + errno_text(errno));
    if (static_cast<size_t>(n) >= buf.size())
        fail("cannot read " + path + ": the path is longer than " + std::to_string(PATH_MAX) +
             " bytes");
    if (n == 0) fail("cannot read " + path + ": it is empty");
    return std::string(buf.data(), static_cast<size_t>(n));
}

}  // namespace

std::string systemd_unit_from_cgroup(std::string_view cgroup_file_text) {
    // cgroup v2's "0::/path"; on a legacy or hybrid hierarchy, systemd's own
    // "N:name=systemd:/path".
    std::optional<std::string_view> unified, named;
    size_t pos = 0;
    while (pos < cgroup_file_text.size()) {
        size_t end = cgroup_file_text.find('\n', pos);
        if (end == std::string_view::npos) end = cgroup_file_text.size();
        const std::string_view line = cgroup_file_text.substr(pos, end - pos);
        pos = end + 1;
        const size_t c1 = line.find(':');
        if (c1 == std::string_view::npos) continue;
        const size_t c2 = line.find(':', c1 + 1);
        if (c2 == std::string_view::npos) continue;
        const std::string_view controllers = line.substr(c1 + 1, c2 - c1 - 1);
        if (line.substr(0, c1) == "0" && controllers.empty()) unified = line.substr(c2 + 1);
        if (controllers == "name=systemd") named = line.substr(c2 + 1);
    }
    std::string_view path = named ? *named : unified.value_or("");
    constexpr std::string_view kDeleted = " (deleted)";
    if (path.size() >= kDeleted.size() && path.substr(path.size() - kDeleted.size()) == kDeleted)
        path.remove_suffix(kDeleted.size());

    // As systemd does (sd_pid_get_unit): the unit is the first component below the slices. Deeper
    // components are the unit's own business (a delegated subtree, or a user's systemd whose
    // services anyone can name "nginx.service"), so they never decide which unit a peer is in.
    pos = 0;
    while (pos < path.size()) {
        size_t end = path.find('/', pos);
        if (end == std::string_view::npos) end = path.size();
        std::string_view part = path.substr(pos, end - pos);
        pos = end + 1;
        if (part.empty()) continue;
        if (part.front() == '_') part.remove_prefix(1);  // systemd's cgroup name escaping
        const auto ends_with = [&](std::string_view s) {
            return part.size() > s.size() && part.substr(part.size() - s.size()) == s;
        };
        if (ends_with(".slice")) continue;
        if (ends_with(".service") || ends_with(".scope")) return std::string(part);
        return {};
    }
    return {};
}

std::string PeerIdentity::text() const {
    std::string out = "pid=" + std::to_string(peer.pid) + " uid=" + std::to_string(peer.uid) +
                      " gid=" + std::to_string(peer.gid);
    if (!peer.exe.empty()) out += " exe=" + log::escape(peer.exe);
    if (!peer.unit.empty()) out += " unit=" + log::escape(peer.unit);
    return out;
}

std::optional<PeerIdentity> peer_identity_of(int fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred)
        return std::nullopt;
    PeerIdentity id;
    id.peer.uid = cred.uid;
    id.peer.gid = cred.gid;
    id.peer.pid = cred.pid;
    try {
        if (cred.pid <= 0)
            fail(
                "the kernel gives no pid for the peer (not connected, or in another pid "
                "namespace)");
        id.peer.groups = peer_groups(fd);
        const UniqueFd pidfd = peer_pidfd(fd, cred);
        check_alive(pidfd.get(), cred.pid);
        std::string exe;
        try {
            exe = peer_exe(cred.pid);
        } catch (const IdentityFailure&) {
            // A zombie's exe is gone: say that it exited rather than that a link was missing.
            if (pidfd_exited(pidfd.get())) fail_exited();
            throw;
        }
        const std::string cgroup_path = proc_path(cred.pid, "cgroup");
        const auto cgroup = read_bounded(cgroup_path);
        if (!cgroup) {
            const int err = errno;
            if (pidfd_exited(pidfd.get())) fail_exited();
            fail("cannot read " + cgroup_path + ": " + errno_text(err));
        }
        // What was read belongs to the peer only if the pid still names it now.
        check_alive(pidfd.get(), cred.pid);
        id.peer.exe = std::move(exe);
        id.peer.unit = systemd_unit_from_cgroup(*cgroup);
    } catch (const IdentityFailure& f) {
        id.error = f.reason;
    }
    return id;
}

}  // namespace keychaind
