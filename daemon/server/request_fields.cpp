// What each request may carry, the policy's first word on it, and the shared field encoders.
#include <algorithm>
#include <array>
#include <span>

#include "core/error.h"
#include "server/operations.h"

namespace keychaind {

using wire::Opcode;
using wire::Tag;

namespace {

// Static lists: checking a request's fields allocates nothing.
std::span<const Tag> allowed_tags(Opcode op) {
    using enum Tag;
    static constexpr Tag kListKeys[] = {IncludeAbsent};
    static constexpr Tag kSelector[] = {KeyId, Label};
    static constexpr Tag kSign[] = {KeyId, Label, Algorithm, Data};
    static constexpr Tag kGenerate[] = {KeyId, Label, Context};
    static constexpr Tag kWrap[] = {KeyId, Label, DataKey, Context};
    static constexpr Tag kUnwrap[] = {Wrapped, Context};
    static constexpr Tag kRewrap[] = {Wrapped, Context, TargetKeyId, TargetLabel};
    static constexpr Tag kProvide[] = {Passphrase, EncodedKey, Label, Expires, Pin, TokenUri};
    static constexpr Tag kPassphrase[] = {Passphrase};
    static constexpr Tag kWait[] = {KeyId, Label, TimeoutMs};
    switch (op) {
        case Opcode::ListKeys: return kListKeys;
        case Opcode::GetPublic:
        case Opcode::Forget: return kSelector;
        case Opcode::Sign:
        case Opcode::Decrypt: return kSign;
        case Opcode::GenerateDataKey: return kGenerate;
        case Opcode::Wrap: return kWrap;
        case Opcode::Unwrap: return kUnwrap;
        case Opcode::Rewrap: return kRewrap;
        case Opcode::Provide: return kProvide;
        case Opcode::Lock:
        case Opcode::Unlock: return kPassphrase;
        case Opcode::Wait: return kWait;
        default: return {};  // STATUS, DISCOVER, SUBSCRIBE carry no fields
    }
}

}  // namespace

WipingBuffer error_reply(uint32_t request_id, ErrorCode code, std::string_view message) {
    return wire::MessageBuilder(static_cast<uint8_t>(Opcode::Error), request_id)
        .u8(Tag::ErrorCode, static_cast<uint8_t>(code))
        .str(Tag::Message, message.substr(0, 1024))
        .finish();
}

wire::MessageBuilder key_info_fields(const KeyInfo& i) {
    auto b = wire::MessageBuilder::fields_only();
    b.bytes(Tag::KeyId, i.id.bytes())
        .str(Tag::Label, i.label)
        .u8(Tag::Kind, static_cast<uint8_t>(i.kind))
        .u32(Tag::Bits, i.bits)
        .u8(Tag::Usages, i.usages);
    for (const auto& s : i.sources) b.str(Tag::Source, s);
    b.u8(Tag::Tethered, i.tethered ? 1 : 0);
    if (i.expires)
        b.u64(Tag::Expires, static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                                      i.expires->time_since_epoch())
                                                      .count()));
    b.u8(Tag::Present, i.present ? 1 : 0);
    return b;
}

KeySelector selector_from(const wire::Message& m, Tag id_tag, Tag label_tag) {
    KeySelector s;
    if (auto raw = m.get(id_tag)) {
        s.id = KeyId::from_bytes(*raw);
        if (!s.id)
            throw KeychainError(ErrorCode::BadRequest,
                                "a key id is 16 or 32 bytes, got " + std::to_string(raw->size()));
        return s;
    }
    if (auto label = m.get_string(label_tag)) {
        if (label->empty()) throw KeychainError(ErrorCode::BadRequest, "empty label");
        s.label = *label;
        return s;
    }
    throw KeychainError(ErrorCode::BadRequest, "no key given (KEY_ID or LABEL)");
}

Lane Operations::lane_of(Opcode op, const wire::Message& req) {
    switch (op) {
        case Opcode::Sign: {
            const auto alg = req.get_u8(Tag::Algorithm);
            // An invalid algorithm is refused at once by sign(): any lane will do. ECDSA and
            // Ed25519 take tens of microseconds; only RSA's private exponent is slow.
            return alg && sign_algorithm_valid(*alg) && sign_algorithm_is_rsa(static_cast<SignAlgorithm>(*alg))
                       ? Lane::Slow
                       : Lane::Quick;
        }
        case Opcode::Decrypt:  // RSA-OAEP
        case Opcode::Provide: return Lane::Slow;
        default: return Lane::Quick;
    }
}

bool Operations::runs_on_worker(Opcode op) {
    switch (op) {
        case Opcode::Sign:
        case Opcode::Decrypt:
        case Opcode::GenerateDataKey:
        case Opcode::Wrap:
        case Opcode::Unwrap:
        case Opcode::Rewrap:
        case Opcode::Provide: return true;  // a PIN means a token login, bounded but not instant
        default: return false;
    }
}

void Operations::check_request(Opcode op, const wire::Message& req, const Caller& caller) const {
    const auto allowed = allowed_tags(op);
    for (const auto& f : req.fields) {
        if (std::none_of(allowed.begin(), allowed.end(),
                         [&](Tag t) { return static_cast<uint16_t>(t) == f.tag; }))
            throw KeychainError(ErrorCode::BadRequest, "field " + std::to_string(f.tag) + " is not valid in " +
                                                           std::string(wire::opcode_name(op)));
    }
    // The key the request names, for a DENIED message: what the client sent, nothing more.
    access_.check_peer(caller, op, [&req]() -> std::string {
        if (!req.has(Tag::KeyId) && !req.has(Tag::Label)) return {};
        try {
            return selector_from(req, Tag::KeyId, Tag::Label).text();
        } catch (const KeychainError&) {
            return {};  // a malformed selector names no key; the handler reports the mistake
        }
    });
}

std::shared_ptr<const Key> Operations::authorized_key(const Caller& caller, Opcode op, const KeySelector& sel,
                                                      const Keychain::Described* found) const {
    if (found != nullptr && found->key) {
        access_.check_key(caller, op, *found->description);
        return found->key;
    }
    auto [key, description] = keychain_.get_described(sel);
    access_.check_key(caller, op, *description);
    return key;
}

void Operations::require_unlocked() const {
    if (state_.locked.load()) throw KeychainError(ErrorCode::Locked, "keychaind is locked");
}

WipingBuffer Operations::run(Opcode op, const wire::Message& req, const Caller& caller,
                             const Keychain::Described* found) {
    switch (op) {
        case Opcode::Status: return status(req);
        case Opcode::ListKeys: return list_keys(req, caller);
        case Opcode::GetPublic: return get_public(req, caller);
        case Opcode::Sign: return sign(req, caller);
        case Opcode::Decrypt: return decrypt(req, caller);
        case Opcode::GenerateDataKey: return generate_data_key(req, caller, found);
        case Opcode::Wrap: return wrap(req, caller, found);
        case Opcode::Unwrap: return unwrap(req, caller, found);
        case Opcode::Rewrap: return rewrap(req, caller);
        case Opcode::Provide: return provide(req, caller);
        case Opcode::Forget: return forget(req, caller);
        case Opcode::Lock: return lock(req);
        case Opcode::Unlock: return unlock(req);
        default:
            throw KeychainError(ErrorCode::Internal,
                                std::string(wire::opcode_name(op)) + " is not a self-contained operation");
    }
}

}  // namespace keychaind
