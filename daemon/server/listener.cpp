// Listener: bind with a safe mode from the start, refuse to steal a live daemon's socket.
#include "server/listener.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/log.h"

namespace keychaind {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw std::runtime_error("socket " + path + ": " + what);
}

sockaddr_un address_of(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path)
        fail(path, "path is " + std::to_string(path.size()) + " bytes; the limit is " +
                       std::to_string(sizeof a.sun_path - 1));
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

// A leftover socket file from a crash is removed; one a live daemon answers on is not.
void clear_stale_socket(const std::string& path, const sockaddr_un& addr) {
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) return;
    if (!S_ISSOCK(st.st_mode)) fail(path, "exists and is not a socket; refusing to replace it");
    UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
        fail(path, "another keychaind is already listening there");
    if (unlink(path.c_str()) != 0) fail(path, std::string("cannot remove stale socket: ") + std::strerror(errno));
    log::info("removed stale socket " + path);
}

}  // namespace

Listener::Listener(const Config& cfg) : path_(cfg.socket_path) {
    const int n = sd_listen_fds(1);
    if (n > 0) {
        if (n != 1 || sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, nullptr, 0) <= 0)
            throw std::runtime_error("socket activation: expected exactly one listening Unix stream socket");
        fd_.reset(SD_LISTEN_FDS_START);
        activated_ = true;
        log::info("using the socket passed by systemd");
        return;
    }
    const sockaddr_un addr = address_of(path_);
    clear_stale_socket(path_, addr);
    fd_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd_) fail(path_, std::strerror(errno));
    // The file is created with no access at all, then opened up to exactly the configured mode.
    const mode_t old = umask(0777);
    const int rc = bind(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    const int bind_errno = errno;
    umask(old);
    if (rc != 0) fail(path_, std::string("bind: ") + std::strerror(bind_errno));
    struct stat st {};
    if (lstat(path_.c_str(), &st) != 0) fail(path_, std::string("stat: ") + std::strerror(errno));
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    if (!cfg.socket_group.empty()) {
        const group* g = getgrnam(cfg.socket_group.c_str());
        if (g == nullptr) fail(path_, "group " + cfg.socket_group + " does not exist");
        if (lchown(path_.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0)
            fail(path_, "chown to group " + cfg.socket_group + ": " + std::strerror(errno));
    }
    if (chmod(path_.c_str(), cfg.socket_mode) != 0) fail(path_, std::string("chmod: ") + std::strerror(errno));
    if (listen(fd_.get(), 128) != 0) fail(path_, std::string("listen: ") + std::strerror(errno));
}

Listener::~Listener() {
    if (activated_ || !fd_) return;
    struct stat st {};
    if (lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) unlink(path_.c_str());
}

}  // namespace keychaind
