// Exchange: sending requests on a kc_client's socket and matching the replies by request id.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/secret_bytes.h"
#include "protocol/message.h"
#include "session.h"

namespace keychain::detail {

// At most this many requests of one run are unanswered at a time (the daemon's default
// max_in_flight is 128; beyond it the daemon answers BUSY).
inline constexpr size_t kMaxInFlight = 64;

// One request and what came back for it.
struct Call {
    keychaind::wire::Opcode opcode{};
    keychaind::WipingBuffer frame;  // the whole frame; its request id is set when it is sent
    bool idempotent = false;
    uint32_t extra_wait_ms = 0;  // how long the daemon may rightly stay silent (WAIT)

    // Results of the last run.
    bool answered = false;
    int code = 0;
    std::string message;           // the daemon's message or the local reason
    keychaind::WipingBuffer reply;  // the success reply's body

    // Bookkeeping of the current connection.
    uint32_t request_id = 0;
    size_t written = 0;

    // The decoded success reply; views point into `reply`.
    keychaind::wire::Message decoded() const { return keychaind::wire::decode(reply); }
};

// Builds a Call from a request; throws ClientError(KC_ERR_ARGUMENT) when the frame is over
// the protocol's absolute limit.
Call make_call(keychaind::wire::Opcode op, keychaind::wire::MessageBuilder&& request);
// True for requests that may be sent again when a connection closed before they were
// answered: STATUS, LIST_KEYS, GET_PUBLIC, SIGN, DECRYPT, UNWRAP, WAIT, DISCOVER.
bool is_idempotent(keychaind::wire::Opcode op);

// Sends every call, waits for all replies and records each call's result. Connects first when
// the client has no socket. Returns KC_OK when every call was answered (each may be an error
// reply), else the local error that stopped the run (which unanswered calls also carry).
// c.last_error gets the message of a local failure.
int run_calls(kc_client& c, std::span<Call* const> calls);

// Runs one call; throws ClientError with the daemon's (or the local) code and message unless
// it succeeded.
void perform(kc_client& c, Call& call);

}  // namespace keychain::detail
