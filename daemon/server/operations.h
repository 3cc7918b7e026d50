// Operations: the request handlers that need no waiting (everything but WAIT, SUBSCRIBE, DISCOVER).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string_view>

#include "core/error.h"
#include "core/keychain.h"
#include "protocol/message.h"
#include "server/access.h"
#include "server/worker_pool.h"

namespace keychaind {

// State the handlers share across threads.
struct DaemonState {
    std::atomic<bool> locked{false};
    std::mutex lock_mu;
    SecretBytes lock_password_hash;  // SHA-256 of LOCK's password; empty when LOCK had none
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

// Builds an error reply frame.
WipingBuffer error_reply(uint32_t request_id, ErrorCode code, std::string_view message);
// Appends KEY_INFO's nested fields.
wire::MessageBuilder key_info_fields(const KeyInfo& info);
// KEY_ID or LABEL (or TARGET_KEY_ID / TARGET_LABEL); throws BadRequest if neither or malformed.
KeySelector selector_from(const wire::Message& m, wire::Tag id_tag, wire::Tag label_tag);

class Operations {
public:
    // PROVIDE with PIN: gives the PIN to the token TOKEN_URI names and returns how many keys that
    // added. Throws KeychainError (BAD_REQUEST when no configured token has that name or URI).
    using PinHandler = std::function<size_t(std::string_view token, SecretBytes pin)>;

    Operations(Keychain& keychain, DaemonState& state, Access& access)
        : keychain_(keychain), state_(state), access_(access) {}
    void set_pin_handler(PinHandler h) { pin_handler_ = std::move(h); }

    // Refuses unknown tags, then asks the policy whether this peer may ask for `op` at all
    // (Access::check_peer). Throws KeychainError.
    void check_request(wire::Opcode op, const wire::Message& req, const Caller& caller) const;
    // Crypto runs on a worker; the rest is cheap enough for the loop thread.
    static bool runs_on_worker(wire::Opcode op);
    // Which worker lane: judged from the request alone (RSA algorithms, DECRYPT, PROVIDE are
    // slow), before any key lookup.
    static Lane lane_of(wire::Opcode op, const wire::Message& req);
    // An envelope operation whose keys are all AES keys in this process's memory costs about a
    // microsecond: less than the two thread hand-offs a worker would add, so the loop runs it.
    // False for token keys (a PKCS#11 call may block) and whenever in doubt. When true for an
    // operation of one KEK (all but REWRAP), `*found` is that key, for run(): one lookup per
    // request, not two.
    bool runs_inline(wire::Opcode op, const wire::Message& req, Keychain::Described* found) const;
    // Executes one of the self-contained operations; every key it touches is checked against the
    // policy first. `found`: the key runs_inline found for this request, or null. Throws
    // KeychainError (or DecodeError).
    WipingBuffer run(wire::Opcode op, const wire::Message& req, const Caller& caller,
                     const Keychain::Described* found = nullptr);
    // A key the caller may use for `op` (Access::check_key); `found` (when it holds a key) is
    // `sel`'s key, already looked up. Throws KeychainError.
    std::shared_ptr<const Key> authorized_key(const Caller& caller, wire::Opcode op, const KeySelector& sel,
                                              const Keychain::Described* found = nullptr) const;

private:
    void require_unlocked() const;
    WipingBuffer status(const wire::Message& req);
    WipingBuffer list_keys(const wire::Message& req, const Caller& caller);
    WipingBuffer get_public(const wire::Message& req, const Caller& caller);
    WipingBuffer sign(const wire::Message& req, const Caller& caller);
    WipingBuffer decrypt(const wire::Message& req, const Caller& caller);
    WipingBuffer generate_data_key(const wire::Message& req, const Caller& caller, const Keychain::Described* found);
    WipingBuffer wrap(const wire::Message& req, const Caller& caller, const Keychain::Described* found);
    WipingBuffer unwrap(const wire::Message& req, const Caller& caller, const Keychain::Described* found);
    WipingBuffer rewrap(const wire::Message& req, const Caller& caller);
    WipingBuffer provide(const wire::Message& req, const Caller& caller);
    WipingBuffer provide_pin(const wire::Message& req, const Caller& caller);
    WipingBuffer forget(const wire::Message& req, const Caller& caller);
    WipingBuffer lock(const wire::Message& req);
    WipingBuffer unlock(const wire::Message& req);

    Keychain& keychain_;
    DaemonState& state_;
    Access& access_;
    PinHandler pin_handler_;
};

}  // namespace keychaind
