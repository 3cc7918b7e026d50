// kc_client: one connection to keychaind, its settings, the request ids and the queued events.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "connection.h"
#include "core/secret_bytes.h"

namespace keychain::detail {

inline constexpr uint32_t kDefaultTimeoutMs = 60000;
// Events the caller has not read yet; past these the oldest are dropped (and counted).
inline constexpr size_t kMaxQueuedEvents = 1024;
inline constexpr size_t kMaxQueuedEventBytes = 4 * 1024 * 1024;

}  // namespace keychain::detail

struct kc_client {
    std::string socket_path;
    keychain::detail::Connection conn;
    uint32_t timeout_ms = keychain::detail::kDefaultTimeoutMs;
    uint32_t last_request_id = 0;
    std::string last_error;
    // When the daemon last closed the connection under us (a restart?); connecting again soon
    // after waits for it to listen again (exchange.cpp).
    std::optional<std::chrono::steady_clock::time_point> peer_closed_at;

    // The request id of the SUBSCRIBE whose events this connection receives.
    std::optional<uint32_t> subscription;
    bool subscription_lost = false;  // the connection carrying it closed
    std::deque<keychaind::WipingBuffer> events;
    size_t event_bytes = 0;
    uint32_t events_lost = 0;

    uint32_t next_request_id() {
        // 0 is the daemon's "no request" id; never reuse a live subscription's id.
        do {
            ++last_request_id;
        } while (last_request_id == 0 || (subscription && *subscription == last_request_id));
        return last_request_id;
    }
    void queue_event(keychaind::WipingBuffer frame);
    // Closes the socket; a subscription on it is gone.
    void drop_connection() noexcept;
};
