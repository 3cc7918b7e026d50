// FakeDaemon: a scripted stand-in for keychaind on a Unix socket in a temporary directory.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/secret_bytes.h"
#include "protocol/message.h"

namespace keychain::test {

// A request as the fake daemon received it; `msg` views point into `body`.
struct ReceivedRequest {
    keychaind::WipingBuffer body;
    keychaind::wire::Message msg;
    std::vector<uint8_t> raw_frame;  // length prefix + body, exactly as sent
};

// One accepted connection, used by a script on the fake daemon's thread.
class FakeConnection {
public:
    explicit FakeConnection(int fd) : fd_(fd) {}
    ~FakeConnection();
    FakeConnection(const FakeConnection&) = delete;
    FakeConnection& operator=(const FakeConnection&) = delete;

    // The next request; throws std::runtime_error on EOF or after 5 s without one.
    ReceivedRequest read();
    // Waits until the client closes its end; throws if it sends a frame instead.
    void expect_eof();
    void send(const keychaind::WipingBuffer& frame) { send_raw(frame); }
    void send_raw(std::span<const uint8_t> bytes);
    void close();

private:
    bool fill(int timeout_ms);  // false on EOF
    int fd_;
    keychaind::wire::FrameReader reader_{keychaind::wire::kAbsoluteMaxFrame};
};

class FakeDaemon {
public:
    using Script = std::function<void(FakeConnection&)>;

    // scripts[i] runs on the i-th accepted connection; the connection closes when it returns.
    explicit FakeDaemon(std::vector<Script> scripts);
    ~FakeDaemon();
    FakeDaemon(const FakeDaemon&) = delete;
    FakeDaemon& operator=(const FakeDaemon&) = delete;

    const std::string& socket_path() const { return path_; }
    // Stops accepting and waits for the running script.
    void stop();
    // Waits (up to 5 s) until n scripts have finished.
    bool wait_finished(int n);
    int accepted() const { return accepted_.load(); }
    // Exceptions thrown by scripts.
    std::vector<std::string> errors();

private:
    void run(std::vector<Script> scripts);

    std::string dir_;
    std::string path_;
    int listen_fd_ = -1;
    std::atomic<bool> stopping_{false};
    std::atomic<int> accepted_{0};
    std::atomic<int> finished_{0};
    std::mutex mu_;
    std::vector<std::string> errors_;
    std::thread thread_;
};

// A success reply to `req` (opcode | 0x80, same request id); add fields, then finish().
keychaind::wire::MessageBuilder reply_to(const keychaind::wire::Message& req);
// An error reply to `req`.
keychaind::WipingBuffer error_to(const keychaind::wire::Message& req, uint8_t code, std::string_view message);
std::vector<uint8_t> bytes_of(std::string_view s);
std::string text_of(std::span<const uint8_t> s);

}  // namespace keychain::test

#include <memory>

#include "keychain/client.h"

namespace keychain::test {

using ClientPtr = std::unique_ptr<kc_client, decltype(&kc_close)>;

// A client connected to the fake daemon; throws when kc_connect fails.
inline ClientPtr connect_to(const FakeDaemon& d) {
    kc_client* c = nullptr;
    if (kc_connect(d.socket_path().c_str(), &c) != KC_OK)
        throw std::runtime_error(std::string("kc_connect: ") + kc_last_error(nullptr));
    return ClientPtr(c, &kc_close);
}

inline std::vector<uint8_t> vec(std::span<const uint8_t> s) { return {s.begin(), s.end()}; }
inline std::vector<uint8_t> vec(const kc_buffer& b) { return {b.data, b.data + b.len}; }

}  // namespace keychain::test
