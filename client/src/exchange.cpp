// The request pipeline: window-limited sending, replies matched by id, one reconnect.
#include "exchange.h"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <unordered_map>
#include <vector>

#include "client_error.h"
#include "keychain/client.h"

namespace keychain::detail {

using keychaind::WipingBuffer;
using keychaind::wire::Opcode;
using keychaind::wire::Tag;

namespace {

constexpr size_t kRequestIdOffset = keychaind::wire::kLengthPrefixSize + 2;
// How long after the daemon closed our connection a connect waits for a listener: a restarted
// daemon (systemd's Restart=, an upgrade) is back within this, and the requests it lost are
// answered instead of failed.
constexpr std::chrono::milliseconds kRestartWait{5000};

std::string hex_byte(uint8_t v) {
    static constexpr char kDigits[] = "0123456789abcdef";
    return std::string("0x") + kDigits[v >> 4] + kDigits[v & 15];
}

struct Failure {
    int code;
    std::string message;
};

// The code and message of an error reply.
Failure read_error(const keychaind::wire::Message& m) {
    std::optional<uint8_t> code;
    std::string message;
    try {
        code = m.get_u8(Tag::ErrorCode);
        message = m.get_string(Tag::Message).value_or("");
    } catch (const keychaind::wire::DecodeError& e) {
        return {KC_ERR_PROTOCOL, std::string("keychaind sent a malformed error reply: ") + e.what()};
    }
    if (!code || *code == 0 || *code >= 100)
        return {KC_ERR_PROTOCOL, "keychaind sent an error reply with code " +
                                     (code ? std::to_string(*code) : std::string("(none)")) + ": " + message};
    return {*code, message};
}

enum class AttemptEnd { Done, Lost, Failed };

struct AttemptResult {
    AttemptEnd end = AttemptEnd::Done;
    Failure failure{KC_OK, {}};
    bool partial_reply = false;  // Lost: part of a frame had arrived
    bool reset_unanswered = false;  // Lost: reset by the peer, nothing ever received on it
};

// One pass over one connection: sends the unanswered calls and reads replies until all are
// answered, the connection closes, or something fails.
class Attempt {
public:
    Attempt(kc_client& c, std::span<Call* const> calls) : c_(c) {
        uint32_t extra = 0;
        for (Call* call : calls) {
            if (call->answered) continue;
            call->request_id = c_.next_request_id();
            keychaind::wire::put_be32(call->frame.data() + kRequestIdOffset, call->request_id);
            call->written = 0;
            by_id_[call->request_id] = call;
            to_send_.push_back(call);
            extra = std::max(extra, call->extra_wait_ms);
        }
        pending_ = to_send_.size();
        if (c_.timeout_ms != 0) limit_ms_ = static_cast<int64_t>(c_.timeout_ms) + extra;
    }

    AttemptResult run() {
        auto last_progress = std::chrono::steady_clock::now();
        while (pending_ > 0) {
            const bool can_write = next_ < to_send_.size() && (to_send_[next_]->written > 0 || in_flight_ < kMaxInFlight);
            int timeout = -1;
            if (limit_ms_ >= 0) {
                const auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - last_progress)
                                      .count();
                timeout = static_cast<int>(std::clamp<int64_t>(limit_ms_ - idle, 0, INT32_MAX));
            }
            const short rev = c_.conn.wait(static_cast<short>(POLLIN | (can_write ? POLLOUT : 0)), timeout);
            if (rev == 0) {
                c_.drop_connection();
                return failed(KC_ERR_IO, "keychaind did not answer within " + std::to_string(limit_ms_) + " ms");
            }
            bool peer_closed = false;
            if (rev & (POLLIN | POLLHUP | POLLERR)) {
                const IoStatus st = c_.conn.read_available();
                if (st == IoStatus::Ok) last_progress = std::chrono::steady_clock::now();
                peer_closed = st == IoStatus::PeerClosed;
                if (auto f = drain()) return failed(f->code, f->message);
            }
            if (!peer_closed && can_write && (rev & POLLOUT)) {
                bool progressed = false;
                peer_closed = write(progressed);
                if (progressed) last_progress = std::chrono::steady_clock::now();
                if (peer_closed) {
                    // The daemon may have said why before closing (e.g. a quota's BUSY).
                    c_.conn.read_available();
                    if (auto f = drain()) return failed(f->code, f->message);
                }
            }
            if (peer_closed) {
                c_.peer_closed_at = std::chrono::steady_clock::now();
                AttemptResult r;
                r.partial_reply = c_.conn.has_partial_frame();
                r.reset_unanswered = c_.conn.reset_before_any_reply();
                c_.drop_connection();
                if (pending_ == 0) return r;
                r.end = AttemptEnd::Lost;
                return r;
            }
        }
        return {};
    }

private:
    AttemptResult failed(int code, std::string message) {
        c_.drop_connection();
        AttemptResult r;
        r.end = AttemptEnd::Failed;
        r.failure = {code, std::move(message)};
        return r;
    }

    // Writes as much as the socket takes; true when the peer is gone.
    bool write(bool& progressed) {
        while (next_ < to_send_.size() && (to_send_[next_]->written > 0 || in_flight_ < kMaxInFlight)) {
            Call& call = *to_send_[next_];
            size_t n = 0;
            const IoStatus st = c_.conn.write_some(std::span<const uint8_t>(call.frame).subspan(call.written), n);
            call.written += n;
            progressed = progressed || n > 0;
            if (st == IoStatus::PeerClosed) return true;
            if (st == IoStatus::WouldBlock) return false;
            ++next_;
            if (!call.answered) ++in_flight_;
        }
        return false;
    }

    // Handles every complete frame received; a failure that ends the attempt is returned.
    std::optional<Failure> drain() {
        for (;;) {
            std::optional<WipingBuffer> frame;
            try {
                frame = c_.conn.next_frame();
            } catch (const keychaind::wire::DecodeError& e) {
                return Failure{KC_ERR_PROTOCOL, std::string("keychaind sent a bad frame: ") + e.what()};
            }
            if (!frame) return std::nullopt;
            if (auto f = handle(std::move(*frame))) return f;
        }
    }

    std::optional<Failure> handle(WipingBuffer body) {
        keychaind::wire::Message m;
        try {
            m = keychaind::wire::decode(body);
        } catch (const keychaind::wire::DecodeError& e) {
            return Failure{KC_ERR_PROTOCOL, std::string("keychaind sent a malformed frame: ") + e.what()};
        }
        if (m.opcode == static_cast<uint8_t>(Opcode::Event)) {
            if (c_.subscription && *c_.subscription == m.request_id) c_.queue_event(std::move(body));
            return std::nullopt;
        }
        // Request id 0: the daemon speaks about the connection itself (a quota, a bad frame),
        // and closes it.
        if (m.request_id == 0 && m.opcode == static_cast<uint8_t>(Opcode::Error)) return read_error(m);
        const auto it = by_id_.find(m.request_id);
        if (it == by_id_.end() || it->second->answered) return std::nullopt;  // not ours any more
        Call& call = *it->second;
        const uint8_t expected = static_cast<uint8_t>(call.opcode) | static_cast<uint8_t>(Opcode::ReplyBit);
        if (m.opcode == static_cast<uint8_t>(Opcode::Error)) {
            Failure f = read_error(m);
            call.code = f.code;
            call.message = std::move(f.message);
        } else if (m.opcode == expected) {
            call.code = KC_OK;
            call.reply = std::move(body);
            if (call.opcode == Opcode::Subscribe) {
                c_.subscription = call.request_id;
                c_.subscription_lost = false;
            }
        } else {
            call.code = KC_ERR_PROTOCOL;
            call.message = "keychaind answered " + std::string(keychaind::wire::opcode_name(call.opcode)) +
                           " with opcode " + hex_byte(m.opcode);
        }
        call.answered = true;
        --pending_;
        if (call.written == call.frame.size()) --in_flight_;
        return std::nullopt;
    }

    kc_client& c_;
    std::unordered_map<uint32_t, Call*> by_id_;
    std::vector<Call*> to_send_;
    size_t next_ = 0;       // the call being written, or the next one to write
    size_t in_flight_ = 0;  // written and not yet answered
    size_t pending_ = 0;    // not yet answered
    int64_t limit_ms_ = -1;
};

void fail(Call& call, int code, const std::string& message) {
    call.answered = true;
    call.code = code;
    call.message = message;
}

}  // namespace

bool is_idempotent(Opcode op) {
    switch (op) {
        case Opcode::Status:
        case Opcode::ListKeys:
        case Opcode::GetPublic:
        case Opcode::Sign:
        case Opcode::Decrypt:
        case Opcode::Unwrap:
        case Opcode::Wait:
        case Opcode::Discover: return true;
        default: return false;
    }
}

Call make_call(Opcode op, keychaind::wire::MessageBuilder&& request) {
    Call call;
    call.opcode = op;
    call.frame = std::move(request).finish();
    call.idempotent = is_idempotent(op);
    const size_t body = call.frame.size() - keychaind::wire::kLengthPrefixSize;
    if (body > keychaind::wire::kAbsoluteMaxFrame)
        throw ClientError(KC_ERR_ARGUMENT, "a " + std::string(keychaind::wire::opcode_name(op)) + " request of " +
                                               std::to_string(body) + " bytes is over the protocol's limit of " +
                                               std::to_string(keychaind::wire::kAbsoluteMaxFrame));
    return call;
}

int run_calls(kc_client& c, std::span<Call* const> calls) {
    for (Call* call : calls) {
        call->answered = false;
        call->code = KC_OK;
        call->message.clear();
        call->reply = WipingBuffer();
        call->written = 0;
    }
    const auto fail_rest = [&](int code, const std::string& message) {
        for (Call* call : calls)
            if (!call->answered) fail(*call, code, message);
        c.last_error = message;
        return code;
    };
    bool reconnected = false;
    std::chrono::steady_clock::time_point first_loss;
    std::string lost_message;  // set when some call failed because the connection closed
    for (;;) {
        if (!c.conn.is_open()) {
            // Only within kRestartWait of the daemon closing our connection (it may be
            // restarting): a daemon that was never reached is reported at once.
            std::chrono::milliseconds wait{0};
            if (c.peer_closed_at) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    *c.peer_closed_at + kRestartWait - std::chrono::steady_clock::now());
                wait = std::max(left, std::chrono::milliseconds(0));
                if (c.timeout_ms != 0) wait = std::min(wait, std::chrono::milliseconds(c.timeout_ms));
            }
            try {
                c.conn.open(c.socket_path, c.timeout_ms, wait);
            } catch (const ClientError& e) {
                return fail_rest(e.code(), e.what());
            }
        }
        const AttemptResult r = Attempt(c, calls).run();
        if (r.end == AttemptEnd::Done) {
            if (lost_message.empty()) return KC_OK;
            c.last_error = lost_message;
            return KC_ERR_IO;
        }
        if (r.end == AttemptEnd::Failed) return fail_rest(r.failure.code, r.failure.message);

        // The connection closed under us (an idle timeout, a daemon restart). A request never
        // completely written cannot have been carried out; one that was, only if nothing of
        // its reply came back, and it is sent again only when doing it twice is harmless.
        // A reconnect that lands in the listen backlog of a daemon being killed is reset unread:
        // that is the same outage, and does not use up the one reconnect while a restart may
        // still be under way.
        const auto now = std::chrono::steady_clock::now();
        if (!reconnected) first_loss = now;
        const bool same_outage = reconnected && r.reset_unanswered && now - first_loss < kRestartWait;
        bool retry = false;
        for (Call* call : calls) {
            if (call->answered) continue;
            const bool fully_written = call->written == call->frame.size();
            if ((!reconnected || same_outage) && (!fully_written || (call->idempotent && !r.partial_reply))) {
                retry = true;
                continue;
            }
            std::string why = r.partial_reply ? "keychaind closed the connection in the middle of a reply"
                                              : "keychaind closed the connection before answering";
            if (reconnected) why += " (also after reconnecting)";
            if (fully_written && !call->idempotent)
                why += "; the " + std::string(keychaind::wire::opcode_name(call->opcode)) +
                       " request may have been carried out";
            fail(*call, KC_ERR_IO, why);
            lost_message = why;
        }
        if (!retry) {
            c.last_error = lost_message;
            return KC_ERR_IO;
        }
        reconnected = true;
    }
}

void perform(kc_client& c, Call& call) {
    Call* const one[] = {&call};
    run_calls(c, one);
    if (call.code != KC_OK) throw ClientError(call.code, call.message);
}

}  // namespace keychain::detail
