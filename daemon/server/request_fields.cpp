// What each request may carry, the policy's first word on it, and the shared field encoders.
#include <algorithm>
#include <array>
#include <initializer_list>
#include <vector>

#include "core/error.h"
#include "server/operations.h"

namespace keychaind {

using wire::Opcode;
using wire::Tag;

namespace {

std::vector<Tag> allowed_tags(Opcode op) {
    switch (op) {
        case Opcode::Status: return {};
        case Opcode::ListKeys: return {Tag::IncludeAbsent};
        case Opcode::GetPublic: return {Tag::KeyId, Tag::Label};
        case Opcode::Sign:
        case Opcode::Decrypt: return {Tag::KeyId, Tag::Label, Tag::Algorithm, Tag::Data};
        case Opcode::GenerateDataKey: return {Tag::KeyId, Tag::Label, Tag::Context};
        case Opcode::Wrap: return {Tag::KeyId, Tag::Label, Tag::DataKey, Tag::Context};
        case Opcode::Unwrap: return {Tag::Wrapped, Tag::Context};
        case Opcode::Rewrap: return {Tag::Wrapped, Tag::Context, Tag::TargetKeyId, Tag::TargetLabel};
        case Opcode::Discover: return {};
        case Opcode::Provide: return {Tag::Passphrase, Tag::EncodedKey, Tag::Label, Tag::Expires, Tag::Pin, Tag::TokenUri};
        case Opcode::Forget: return {Tag::KeyId, Tag::Label};
        case Opcode::Lock:
        case Opcode::Unlock: return {Tag::Passphrase};
        case Opcode::Wait: return {Tag::KeyId, Tag::Label, Tag::TimeoutMs};
        case Opcode::Subscribe: return {};
        default: return {};
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
    std::string key_text;
    if (req.has(Tag::KeyId) || req.has(Tag::Label)) {
        try {
            key_text = selector_from(req, Tag::KeyId, Tag::Label).text();
        } catch (const KeychainError&) {
            // A malformed selector: the message names no key; the handler reports the mistake.
        }
    }
    access_.check_peer(caller, op, key_text);
}

std::shared_ptr<const Key> Operations::authorized_key(const Caller& caller, Opcode op, const KeySelector& sel) const {
    auto [key, info] = keychain_.get_with_info(sel);
    access_.check_key(caller, op, info);
    return key;
}

void Operations::require_unlocked() const {
    if (state_.locked.load()) throw KeychainError(ErrorCode::Locked, "keychaind is locked");
}

WipingBuffer Operations::run(Opcode op, const wire::Message& req, const Caller& caller) {
    switch (op) {
        case Opcode::Status: return status(req);
        case Opcode::ListKeys: return list_keys(req, caller);
        case Opcode::GetPublic: return get_public(req, caller);
        case Opcode::Sign: return sign(req, caller);
        case Opcode::Decrypt: return decrypt(req, caller);
        case Opcode::GenerateDataKey: return generate_data_key(req, caller);
        case Opcode::Wrap: return wrap(req, caller);
        case Opcode::Unwrap: return unwrap(req, caller);
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
