// The fake daemon's socket handling.
#include "fake_daemon.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace keychain::test {

using keychaind::WipingBuffer;

namespace {
constexpr int kReadTimeoutMs = 5000;
}

FakeConnection::~FakeConnection() { close(); }

void FakeConnection::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

bool FakeConnection::fill(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) throw std::runtime_error("fake daemon: no data from the client in time");
    uint8_t buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == ECONNRESET) return false;
    if (n < 0) throw std::runtime_error(std::string("fake daemon: recv: ") + std::strerror(errno));
    if (n == 0) return false;
    reader_.append({buf, static_cast<size_t>(n)});
    return true;
}

ReceivedRequest FakeConnection::read() {
    for (;;) {
        if (auto body = reader_.next()) {
            ReceivedRequest r;
            r.raw_frame.resize(4);
            keychaind::wire::put_be32(r.raw_frame.data(), static_cast<uint32_t>(body->size()));
            r.raw_frame.insert(r.raw_frame.end(), body->begin(), body->end());
            r.body = std::move(*body);
            r.msg = keychaind::wire::decode(r.body);
            return r;
        }
        if (!fill(kReadTimeoutMs)) throw std::runtime_error("fake daemon: the client closed the connection");
    }
}

void FakeConnection::expect_eof() {
    while (fill(kReadTimeoutMs)) {
        if (reader_.next()) throw std::runtime_error("fake daemon: expected EOF, got a frame");
    }
}

void FakeConnection::send_raw(std::span<const uint8_t> bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
        const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error(std::string("fake daemon: send: ") + std::strerror(errno));
        off += static_cast<size_t>(n);
    }
}

FakeDaemon::FakeDaemon(std::vector<Script> scripts) {
    char tmpl[] = "/tmp/kc-client-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    path_ = dir_ + "/keychaind.sock";
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 16) != 0)
        throw std::runtime_error("fake daemon: cannot listen on " + path_);
    thread_ = std::thread([this, s = std::move(scripts)]() mutable { run(std::move(s)); });
}

FakeDaemon::~FakeDaemon() {
    stop();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
}

void FakeDaemon::stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
}

bool FakeDaemon::wait_finished(int n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (finished_.load() < n) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

std::vector<std::string> FakeDaemon::errors() {
    std::lock_guard lk(mu_);
    return errors_;
}

void FakeDaemon::run(std::vector<Script> scripts) {
    for (auto& script : scripts) {
        int fd = -1;
        while (fd < 0) {
            // After stop(), connections already queued are still served; nothing more is awaited.
            const bool last_look = stopping_;
            pollfd p{listen_fd_, POLLIN, 0};
            if (::poll(&p, 1, last_look ? 0 : 20) > 0) fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0 && last_look) return;
        }
        ++accepted_;
        {
            FakeConnection conn(fd);
            try {
                script(conn);
            } catch (const std::exception& e) {
                std::lock_guard lk(mu_);
                errors_.push_back(e.what());
            }
        }
        ++finished_;
    }
}

keychaind::wire::MessageBuilder reply_to(const keychaind::wire::Message& req) {
    return keychaind::wire::MessageBuilder(static_cast<uint8_t>(req.opcode | 0x80), req.request_id);
}

WipingBuffer error_to(const keychaind::wire::Message& req, uint8_t code, std::string_view message) {
    return keychaind::wire::MessageBuilder(0xFF, req.request_id)
        .u8(keychaind::wire::Tag::ErrorCode, code)
        .str(keychaind::wire::Tag::Message, message)
        .finish();
}

std::vector<uint8_t> bytes_of(std::string_view s) { return {s.begin(), s.end()}; }
std::string text_of(std::span<const uint8_t> s) { return {s.begin(), s.end()}; }

}  // namespace keychain::test
