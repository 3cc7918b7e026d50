// PROVIDE, FORGET, LOCK, UNLOCK.
#include "core/data_key_text.h"
#include "core/error.h"
#include "core/log.h"
#include "server/operations.h"

namespace keychaind {

using wire::MessageBuilder;
using wire::Opcode;
using wire::Tag;

namespace {

uint8_t reply_opcode(Opcode op) {
    return static_cast<uint8_t>(static_cast<uint8_t>(op) | static_cast<uint8_t>(Opcode::ReplyBit));
}

// A secret text field, checked as UTF-8 without ever being copied into a std::string.
SecretBytes secret_field(const wire::Message& req, Tag t) {
    auto v = req.get(t);
    if (!v) return {};
    SecretBytes s(*v);
    if (!wire::is_utf8(s.view()) || s.view().find('\0') != std::string_view::npos)
        throw KeychainError(ErrorCode::BadRequest, "a passphrase or key text must be UTF-8 without NUL");
    return s;
}

SecretBytes password_hash(const SecretBytes& password) {
    if (password.empty()) return {};
    SecretBytes h(32);
    crypto_backend().sha256(password.span(), h.data());
    return h;
}

}  // namespace

WipingBuffer Operations::provide(const wire::Message& req, const Caller& caller) {
    const PeerIdentity& peer = *caller.identity;
    if (req.has(Tag::Pin) || req.has(Tag::TokenUri)) return provide_pin(req, caller);
    const SecretBytes pass = secret_field(req, Tag::Passphrase);
    const SecretBytes encoded = secret_field(req, Tag::EncodedKey);
    if (pass.empty() == encoded.empty())
        throw KeychainError(ErrorCode::BadRequest, "PROVIDE needs exactly one of PASSPHRASE or ENCODED_KEY");
    SecretBytes material = pass.empty() ? decode_encoded_key(encoded.view()) : passphrase_key(pass.view());
    std::optional<SystemTime> expires;
    if (auto e = req.get_u64(Tag::Expires)) {
        // Found by fuzz/dispatch: a time past 2262 overflowed system_clock's nanoseconds (UB).
        if (*e > static_cast<uint64_t>(kLatestExpiry.count()))
            throw KeychainError(ErrorCode::BadRequest, "EXPIRES is after " + std::string(kLatestExpiryText) +
                                                           ", the latest expiry; leave it out for a key that does not expire");
        expires = SystemTime(std::chrono::seconds(static_cast<int64_t>(*e)));
    }
    auto key = Key::aes(std::move(material), req.get_string(Tag::Label).value_or("provided"), expires);
    const auto id = key->id();
    if (keychain_.add(key, KeyOrigin{"provided", "uid=" + std::to_string(peer.uid()), false}) ==
        Keychain::AddOutcome::Expired)
        throw KeychainError(ErrorCode::BadRequest, "EXPIRES is in the past");
    log::info("key " + id.hex() + " provided by " + peer.text());
    return MessageBuilder(reply_opcode(Opcode::Provide), req.request_id).bytes(Tag::KeyId, id.bytes()).finish();
}

// A token's PIN: the token's driver logs in and loads its keys (this runs on a worker; a token
// call is bounded by [pkcs11] call_timeout_ms).
WipingBuffer Operations::provide_pin(const wire::Message& req, const Caller& caller) {
    if (req.has(Tag::Passphrase) || req.has(Tag::EncodedKey) || req.has(Tag::Label) || req.has(Tag::Expires))
        throw KeychainError(ErrorCode::BadRequest,
                            "PROVIDE with PIN takes only PIN and TOKEN_URI");
    SecretBytes pin = secret_field(req, Tag::Pin);
    const auto token = req.get_string(Tag::TokenUri);
    if (pin.empty() || !token || token->empty())
        throw KeychainError(ErrorCode::BadRequest, "PROVIDE with a PIN needs both PIN and TOKEN_URI");
    if (token->size() > 1024) throw KeychainError(ErrorCode::BadRequest, "TOKEN_URI is over 1024 bytes");
    if (!pin_handler_)
        throw KeychainError(ErrorCode::BadRequest, "no PKCS#11 token is configured ([[pkcs11.token]])");
    log::info("PIN for token \"" + log::escape(*token) + "\" provided by " + caller.identity->text());
    const size_t added = pin_handler_(*token, std::move(pin));
    return MessageBuilder(reply_opcode(Opcode::Provide), req.request_id)
        .u32(Tag::Count, static_cast<uint32_t>(added))
        .finish();
}

WipingBuffer Operations::forget(const wire::Message& req, const Caller& caller) {
    size_t n;
    if (req.has(Tag::KeyId) || req.has(Tag::Label)) {
        const KeySelector sel = selector_from(req, Tag::KeyId, Tag::Label);
        // NO_SUCH_KEY / KEY_NOT_PRESENT when there is nothing to forget; DENIED when not allowed
        authorized_key(caller, Opcode::Forget, sel);
        n = keychain_.forget(&sel);
    } else {
        // All keys: only when the peer may forget every one of them.
        for (const auto& info : keychain_.list(false)) access_.check_key(caller, Opcode::Forget, info);
        n = keychain_.forget(nullptr);
    }
    return MessageBuilder(reply_opcode(Opcode::Forget), req.request_id)
        .u32(Tag::Count, static_cast<uint32_t>(n))
        .finish();
}

WipingBuffer Operations::lock(const wire::Message& req) {
    const SecretBytes pw = secret_field(req, Tag::Passphrase);
    {
        std::lock_guard lk(state_.lock_mu);
        if (state_.locked.load()) throw KeychainError(ErrorCode::Locked, "keychaind is already locked");
        state_.lock_password_hash = password_hash(pw);
        state_.locked = true;
    }
    log::info("keychaind locked");
    return MessageBuilder(reply_opcode(Opcode::Lock), req.request_id).finish();
}

WipingBuffer Operations::unlock(const wire::Message& req) {
    const SecretBytes pw = secret_field(req, Tag::Passphrase);
    {
        std::lock_guard lk(state_.lock_mu);
        if (!state_.locked.load()) throw KeychainError(ErrorCode::BadRequest, "keychaind is not locked");
        const SecretBytes h = password_hash(pw);
        if (!state_.lock_password_hash.equals(h.span()))
            throw KeychainError(ErrorCode::Denied, "wrong unlock password");
        state_.lock_password_hash.clear();
        state_.locked = false;
    }
    log::info("keychaind unlocked");
    return MessageBuilder(reply_opcode(Opcode::Unlock), req.request_id).finish();
}

}  // namespace keychaind
