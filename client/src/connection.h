// Connection: one Unix stream socket to keychaind and the frames read from it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "core/secret_bytes.h"
#include "protocol/message.h"

namespace keychain::detail {

// The largest reply frame the library accepts; anything bigger closes the connection.
inline constexpr size_t kMaxReplyFrame = keychaind::wire::kAbsoluteMaxFrame;

enum class IoStatus { Ok, WouldBlock, PeerClosed };

class Connection {
public:
    Connection() = default;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection() { close(); }

    // Connects (blocking, bounded by timeout_ms when non-zero), then makes the socket
    // non-blocking. While nobody listens (ENOENT, ECONNREFUSED: a daemon restarting), tries
    // again for up to `listener_wait`. Throws ClientError(KC_ERR_CONNECT or KC_ERR_ARGUMENT).
    void open(const std::string& path, uint32_t timeout_ms,
              std::chrono::milliseconds listener_wait = std::chrono::milliseconds(0));
    void close() noexcept;
    bool is_open() const noexcept { return fd_ >= 0; }

    // Writes what the socket takes now; `written` gets the byte count. PeerClosed on
    // EPIPE/ECONNRESET; other errors throw ClientError(KC_ERR_IO).
    IoStatus write_some(std::span<const uint8_t> data, size_t& written);
    // Reads everything available into the frame reader. PeerClosed on EOF or a reset.
    IoStatus read_available();
    // The next complete frame body. Throws DecodeError for a zero or oversized length.
    std::optional<keychaind::WipingBuffer> next_frame() { return reader_.next(); }
    // True when part of a frame has arrived but not all of it.
    bool has_partial_frame() const noexcept { return reader_.buffered() > 0; }
    // The peer closed with what we sent still unread (ECONNRESET, not end-of-file) and nothing
    // ever came back: a daemon that died, or one that never accepted this connection (it died
    // with the connection in its listen backlog).
    bool reset_before_any_reply() const noexcept { return reset_ && !received_; }
    // poll(2) on the socket; returns revents (0 on timeout). timeout_ms < 0 waits forever.
    short wait(short events, int timeout_ms);

private:
    void finish_open(int connected);  // takes the fd; non-blocking, fresh frame reader

    int fd_ = -1;
    keychaind::wire::FrameReader reader_{kMaxReplyFrame};
    bool reset_ = false;     // ECONNRESET seen
    bool received_ = false;  // a byte arrived
};

}  // namespace keychain::detail
