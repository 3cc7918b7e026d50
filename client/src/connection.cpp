// Socket plumbing: connect, non-blocking reads and writes, poll.
#include "connection.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "client_error.h"
#include "keychain/client.h"

namespace keychain::detail {

namespace {
std::string errno_text(int err) { return std::strerror(err); }

// Closes an fd unless released; keeps open() free of close() calls on every error path.
class FdGuard {
public:
    explicit FdGuard(int fd) : fd_(fd) {}
    ~FdGuard() {
        if (fd_ >= 0) ::close(fd_);
    }
    FdGuard(const FdGuard&) = delete;
    FdGuard& operator=(const FdGuard&) = delete;
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_;
};
}  // namespace

void Connection::open(const std::string& path, uint32_t timeout_ms, std::chrono::milliseconds listener_wait) {
    close();
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        throw ClientError(KC_ERR_ARGUMENT, "socket path '" + path + "' is empty or longer than " +
                                               std::to_string(sizeof addr.sun_path - 1) + " bytes");
    std::memcpy(addr.sun_path, path.data(), path.size());

    const auto deadline = std::chrono::steady_clock::now() + listener_wait;
    auto pause = std::chrono::milliseconds(10);
    for (;;) {
        FdGuard fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (fd.get() < 0) throw ClientError(KC_ERR_CONNECT, "socket: " + errno_text(errno));
        // A Unix-socket connect waits for room in the listen backlog for up to SO_SNDTIMEO.
        timeval tv{static_cast<time_t>(timeout_ms / 1000), static_cast<suseconds_t>(timeout_ms % 1000 * 1000)};
        setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int rc;
        do {
            rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
        } while (rc != 0 && errno == EINTR);
        if (rc == 0) {
            finish_open(fd.release());
            return;
        }
        const int err = errno;
        const bool nobody_listens = err == ENOENT || err == ECONNREFUSED;
        if (nobody_listens && std::chrono::steady_clock::now() + pause < deadline) {
            std::this_thread::sleep_for(pause);
            pause = std::min(pause * 2, std::chrono::milliseconds(200));
            continue;
        }
        std::string hint;
        if (nobody_listens) hint = " (is keychaind running?)";
        if (err == EACCES) hint = " (is this user in the socket's group?)";
        throw ClientError(KC_ERR_CONNECT, "cannot connect to " + path + ": " + errno_text(err) + hint);
    }
}

void Connection::finish_open(int connected) {
    FdGuard fd(connected);
    const int flags = fcntl(fd.get(), F_GETFL);
    if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0)
        throw ClientError(KC_ERR_CONNECT, "fcntl(O_NONBLOCK): " + errno_text(errno));
    fd_ = fd.release();
    reader_ = keychaind::wire::FrameReader(kMaxReplyFrame);
    reset_ = received_ = false;
}

void Connection::close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    reader_ = keychaind::wire::FrameReader(kMaxReplyFrame);
    reset_ = received_ = false;
}

IoStatus Connection::write_some(std::span<const uint8_t> data, size_t& written) {
    written = 0;
    while (written < data.size()) {
        const ssize_t n = ::send(fd_, data.data() + written, data.size() - written, MSG_NOSIGNAL);
        if (n > 0) {
            written += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return IoStatus::WouldBlock;
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)) {
            reset_ = reset_ || errno == ECONNRESET;
            return IoStatus::PeerClosed;
        }
        throw ClientError(KC_ERR_IO, "send to keychaind: " + errno_text(errno));
    }
    return IoStatus::Ok;
}

IoStatus Connection::read_available() {
    uint8_t buf[16384];
    IoStatus status = IoStatus::WouldBlock;
    for (;;) {
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            received_ = true;
            reader_.append({buf, static_cast<size_t>(n)});
            status = IoStatus::Ok;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n == 0 || errno == ECONNRESET) {
            reset_ = reset_ || n < 0;
            status = IoStatus::PeerClosed;
            break;
        }
        const int err = errno;
        keychaind::secure_wipe(buf, sizeof buf);
        throw ClientError(KC_ERR_IO, "recv from keychaind: " + errno_text(err));
    }
    // Replies carry data keys; leave none of them on the stack.
    keychaind::secure_wipe(buf, sizeof buf);
    return status;
}

short Connection::wait(short events, int timeout_ms) {
    pollfd p{fd_, events, 0};
    for (;;) {
        const int rc = ::poll(&p, 1, timeout_ms);
        if (rc > 0) return p.revents;
        if (rc == 0) return 0;
        if (errno != EINTR) throw ClientError(KC_ERR_IO, "poll: " + errno_text(errno));
    }
}

}  // namespace keychain::detail
