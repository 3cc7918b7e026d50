// Peer identity over real sockets: this process, a child under another uid, a child that is gone.
#include "server/peer_identity.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/unique_fd.h"

using keychaind::peer_identity_of;
using keychaind::PeerIdentity;
using keychaind::systemd_unit_from_cgroup;
using keychaind::UniqueFd;

namespace {

std::string self_exe() {
    char buf[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf);
    REQUIRE(n > 0);
    return std::string(buf, static_cast<size_t>(n));
}

std::string self_unit() {
    std::ifstream in("/proc/self/cgroup");
    std::ostringstream s;
    s << in.rdbuf();
    return systemd_unit_from_cgroup(s.str());
}

// A listening socket in the abstract namespace: reachable by a child under any uid.
class AbstractListener {
public:
    AbstractListener() {
        static int counter = 0;
        name_ =
            "keychaind-peer-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
        fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(fd_);
        const auto [addr, len] = address();
        REQUIRE(::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0);
        REQUIRE(::listen(fd_.get(), 8) == 0);
    }
    // Async-signal-safe enough for a forked child: only syscalls.
    int connect_to() const {
        const int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const auto [addr, len] = address();
        if (s < 0 || ::connect(s, reinterpret_cast<const sockaddr*>(&addr), len) != 0) return -1;
        return s;
    }
    UniqueFd accept_one() const {
        return UniqueFd(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    }

private:
    std::pair<sockaddr_un, socklen_t> address() const {
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path + 1, name_.data(), name_.size());
        return {a, static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name_.size())};
    }
    std::string name_;
    UniqueFd fd_;
};

void check_is_this_process(const PeerIdentity& id) {
    INFO(id.error);
    CHECK(id.established());
    CHECK(id.uid() == ::getuid());
    CHECK(id.peer.uid == ::getuid());
    CHECK(id.peer.gid == ::getgid());
    CHECK(id.peer.pid == ::getpid());
    CHECK(id.peer.exe == self_exe());
    CHECK(id.peer.unit == self_unit());
    const int n = ::getgroups(0, nullptr);
    REQUIRE(n >= 0);
    std::vector<gid_t> mine(static_cast<size_t>(n));
    REQUIRE(::getgroups(n, mine.data()) == n);
    for (const gid_t g : mine)
        CHECK(std::find(id.peer.groups.begin(), id.peer.groups.end(), g) != id.peer.groups.end());
}

}  // namespace

TEST_CASE("over a socketpair the peer is this process") {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    const UniqueFd a(sv[0]), b(sv[1]);
    const auto id = peer_identity_of(a.get());
    REQUIRE(id.has_value());
    check_is_this_process(*id);
}

TEST_CASE("over a connected listening socket the peer is this process") {
    AbstractListener l;
    const UniqueFd client(l.connect_to());
    REQUIRE(client);
    const UniqueFd server = l.accept_one();
    REQUIRE(server);
    const auto id = peer_identity_of(server.get());
    REQUIRE(id.has_value());
    check_is_this_process(*id);
}

TEST_CASE("a socket with no peer has no identity") {
    const UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const auto id = peer_identity_of(s.get());
    // An unconnected Unix socket answers SO_PEERCRED with no process (pid 0): not established.
    if (id) CHECK_FALSE(id->established());
    CHECK_FALSE(peer_identity_of(-1).has_value());
}

TEST_CASE("a peer that exited and was reaped before its identity was read is not established") {
    AbstractListener l;
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) ::_exit(l.connect_to() >= 0 ? 0 : 1);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    const UniqueFd server = l.accept_one();
    REQUIRE(server);
    const auto id = peer_identity_of(server.get());
    REQUIRE(id.has_value());
    CHECK_FALSE(id->established());
    CHECK(id->peer.pid == child);
    CHECK(id->error == "the peer exited before its identity was read");
    CHECK(id->peer.exe.empty());
}

TEST_CASE("a peer that exited but is not reaped yet (a zombie) is not established") {
    AbstractListener l;
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) ::_exit(l.connect_to() >= 0 ? 0 : 1);
    siginfo_t info{};
    REQUIRE(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT) == 0);
    const UniqueFd server = l.accept_one();
    REQUIRE(server);
    const auto id = peer_identity_of(server.get());
    REQUIRE(::waitpid(child, nullptr, 0) == child);
    REQUIRE(id.has_value());
    CHECK_FALSE(id->established());
    CHECK(id->error == "the peer exited before its identity was read");
}

TEST_CASE("a peer under another uid is seen with that uid and gid") {
    if (::geteuid() != 0) {
        WARN("not root; the other-uid case is not tested");
        return;
    }
    AbstractListener l;
    int go[2];
    REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(go[1]);
        if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
            ::setresuid(65534, 65534, 65534) != 0)
            ::_exit(2);
        if (l.connect_to() < 0) ::_exit(3);
        char c;
        (void)!::read(go[0], &c, 1);  // stay alive until the parent has read the identity
        ::_exit(0);
    }
    ::close(go[0]);
    const UniqueFd server = l.accept_one();
    const auto id = server ? peer_identity_of(server.get()) : std::nullopt;
    ::close(go[1]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    REQUIRE(id.has_value());
    INFO(id->error);
    CHECK(id->established());
    CHECK(id->uid() == 65534);
    CHECK(id->peer.gid == 65534);
    CHECK(id->peer.pid == child);
    CHECK(id->peer.exe == self_exe());
    CHECK(std::find(id->peer.groups.begin(), id->peer.groups.end(), 0u) == id->peer.groups.end());
}

TEST_CASE("text() gives pid, uid, gid, and exe and unit escaped when known") {
    PeerIdentity id;
    id.peer.pid = 1234;
    id.peer.uid = 33;
    id.peer.gid = 34;
    CHECK(id.text() == "pid=1234 uid=33 gid=34");
    id.peer.exe = "/usr/sbin/nginx";
    id.peer.unit = "nginx.service";
    CHECK(id.text() == "pid=1234 uid=33 gid=34 exe=/usr/sbin/nginx unit=nginx.service");
    id.peer.exe = "/tmp/evil\n\x1b[31m";
    id.peer.unit.clear();
    CHECK(id.text() == "pid=1234 uid=33 gid=34 exe=/tmp/evil\\x0a\\x1b[31m");
}

TEST_CASE("the systemd unit is the first component below the slices") {
    CHECK(systemd_unit_from_cgroup("0::/system.slice/nginx.service\n") == "nginx.service");
    CHECK(systemd_unit_from_cgroup("0::/system.slice/nginx.service") == "nginx.service");
    CHECK(systemd_unit_from_cgroup("0::/system.slice/system-getty.slice/getty@tty1.service\n") ==
          "getty@tty1.service");
    CHECK(systemd_unit_from_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n") ==
          "session-2.scope");
    CHECK(systemd_unit_from_cgroup("0::/init.scope\n") == "init.scope");
    // A delegated subtree belongs to its unit.
    CHECK(systemd_unit_from_cgroup("0::/system.slice/docker-0ab1.scope/payload\n") ==
          "docker-0ab1.scope");
    // A user's own services (anyone can name one "nginx.service") are the user manager's unit,
    // and a container's units are the container's scope.
    CHECK(systemd_unit_from_cgroup(
              "0::/user.slice/user-1000.slice/user@1000.service/app.slice/nginx.service\n") ==
          "user@1000.service");
    CHECK(systemd_unit_from_cgroup(
              "0::/machine.slice/machine-web.scope/payload/system.slice/nginx.service\n") ==
          "machine-web.scope");
    // systemd escapes a cgroup name that could clash with the kernel's with a leading '_'.
    CHECK(systemd_unit_from_cgroup("0::/system.slice/_cpu.service\n") == "cpu.service");
    // A process whose cgroup was removed (a zombie).
    CHECK(systemd_unit_from_cgroup("0::/system.slice/nginx.service (deleted)\n") ==
          "nginx.service");
    // Legacy and hybrid hierarchies: systemd's own named hierarchy.
    CHECK(systemd_unit_from_cgroup("12:cpu,cpuacct:/system.slice/cron.service\n"
                                   "1:name=systemd:/system.slice/cron.service\n") ==
          "cron.service");
    CHECK(systemd_unit_from_cgroup("12:cpu,cpuacct:/\n1:name=systemd:/system.slice/cron.service\n"
                                   "0::/system.slice/cron.service\n") == "cron.service");
    // Outside any unit.
    CHECK(systemd_unit_from_cgroup("0::/\n").empty());
    CHECK(systemd_unit_from_cgroup("0::/user.slice\n").empty());
    CHECK(systemd_unit_from_cgroup("0::/lxc/container1\n").empty());
    CHECK(systemd_unit_from_cgroup("0::/system.slice/.service\n").empty());
    CHECK(systemd_unit_from_cgroup("").empty());
    CHECK(systemd_unit_from_cgroup("garbage without colons\n").empty());
    CHECK(systemd_unit_from_cgroup("3:cpu:/system.slice/x.service\n").empty());
}
