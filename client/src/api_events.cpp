// SUBSCRIBE and reading the events it brings.
#include <poll.h>

#include <chrono>
#include <memory>
#include <utility>

#include "api_guard.h"
#include "outputs.h"
#include "requests.h"

using keychain::detail::Call;
using keychain::detail::ClientError;
using keychain::detail::guarded;
using keychaind::WipingBuffer;
using keychaind::wire::Opcode;
using keychaind::wire::Tag;

namespace {

void fill_event(const WipingBuffer& frame, uint32_t lost, kc_event* out) {
    const auto m = keychaind::wire::decode(frame);
    const auto type = m.get_u8(Tag::EventType);
    if (!type) throw ClientError(KC_ERR_PROTOCOL, "keychaind sent an event without EVENT_TYPE");
    const auto info = keychain::detail::required(m, Tag::KeyInfo, "EVENT", "KEY_INFO");
    const std::string reason = m.get_string(Tag::Reason).value_or("");
    kc_event ev{};
    ev.type = *type;
    ev.lost = lost;
    ev.reason = keychain::detail::copy_string(reason);
    try {
        keychain::detail::fill_key_info(info, &ev.key);
    } catch (...) {
        kc_event_clear(&ev);
        throw;
    }
    *out = ev;
}

// Moves the events among the frames already received into the queue; replies nobody waits
// for any more are dropped. Throws for a frame that breaks the connection.
void drain_frames(kc_client& c) {
    for (;;) {
        std::optional<WipingBuffer> frame;
        try {
            frame = c.conn.next_frame();
        } catch (const keychaind::wire::DecodeError& e) {
            c.drop_connection();
            throw ClientError(KC_ERR_PROTOCOL, std::string("keychaind sent a bad frame: ") + e.what());
        }
        if (!frame) return;
        keychaind::wire::Message m;
        try {
            m = keychaind::wire::decode(*frame);
        } catch (const keychaind::wire::DecodeError& e) {
            c.drop_connection();
            throw ClientError(KC_ERR_PROTOCOL, std::string("keychaind sent a malformed frame: ") + e.what());
        }
        if (m.opcode == static_cast<uint8_t>(Opcode::Event) && c.subscription && m.request_id == *c.subscription) {
            c.queue_event(std::move(*frame));
        } else if (m.request_id == 0 && m.opcode == static_cast<uint8_t>(Opcode::Error)) {
            const int code = m.get_u8(Tag::ErrorCode).value_or(KC_ERR_PROTOCOL);
            const std::string message = m.get_string(Tag::Message).value_or("");
            c.drop_connection();
            throw ClientError(code > 0 && code < 100 ? code : KC_ERR_PROTOCOL, message);
        }
    }
}

bool pop_event(kc_client& c, kc_event* out) {
    if (c.events.empty()) return false;
    WipingBuffer frame = std::move(c.events.front());
    c.events.pop_front();
    c.event_bytes -= frame.size();
    const uint32_t lost = std::exchange(c.events_lost, 0);
    fill_event(frame, lost, out);
    return true;
}

}  // namespace

extern "C" {

KC_API int kc_subscribe(kc_client* c) {
    return guarded(c, [&] {
        if (c->subscription && c->conn.is_open()) return;
        Call call = keychain::detail::make_call(Opcode::Subscribe, keychain::detail::new_request(Opcode::Subscribe));
        keychain::detail::perform(*c, call);  // the reply sets c->subscription
    });
}

KC_API int kc_next_event(kc_client* c, int timeout_ms, kc_event* out) {
    if (out != nullptr) *out = kc_event{};
    return guarded(c, [&] {
        if (out == nullptr) throw ClientError(KC_ERR_ARGUMENT, "out is NULL");
        if (pop_event(*c, out)) return;
        const auto lost_subscription = [] {
            return ClientError(KC_ERR_IO, "the connection carrying the subscription closed; subscribe again");
        };
        if (!c->subscription || !c->conn.is_open()) {
            if (c->subscription_lost) throw lost_subscription();
            throw ClientError(KC_ERR_ARGUMENT, "not subscribed (call kc_subscribe first)");
        }
        const auto start = std::chrono::steady_clock::now();
        for (;;) {
            drain_frames(*c);
            if (pop_event(*c, out)) return;
            int wait_ms = -1;
            if (timeout_ms >= 0) {
                const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::steady_clock::now() - start)
                                       .count();
                wait_ms = static_cast<int>(std::max<int64_t>(0, timeout_ms - spent));
            }
            if (c->conn.wait(POLLIN, wait_ms) == 0)
                throw ClientError(KC_ERR_TIMEOUT, "no event within " + std::to_string(timeout_ms) + " ms");
            if (c->conn.read_available() == keychain::detail::IoStatus::PeerClosed) {
                drain_frames(*c);
                c->drop_connection();
                if (pop_event(*c, out)) return;
                throw lost_subscription();
            }
        }
    });
}

}  // extern "C"
