// GENERATE_DATA_KEY, WRAP, UNWRAP, REWRAP over KCW1.
#include "core/envelope.h"
#include "core/error.h"
#include "server/operations.h"

namespace keychaind {

using wire::MessageBuilder;
using wire::Opcode;
using wire::Tag;

namespace {

uint8_t reply_opcode(Opcode op) {
    return static_cast<uint8_t>(static_cast<uint8_t>(op) | static_cast<uint8_t>(Opcode::ReplyBit));
}

std::span<const uint8_t> context_of(const wire::Message& req) {
    auto c = req.get(Tag::Context);
    return c ? *c : std::span<const uint8_t>{};
}

// The KEK must be an AES key: its id names it inside every wrapped key.
std::shared_ptr<const Key> kek_check(std::shared_ptr<const Key> key) {
    if (!(key->usages() & kUsageWrap))
        throw KeychainError(ErrorCode::Unsupported, "key " + key->id().hex() + " is not a key-encryption key");
    return key;
}

envelope::WrappedView parse_wrapped(const wire::Message& req) {
    const auto w = req.get(Tag::Wrapped);
    if (!w) throw KeychainError(ErrorCode::BadRequest, "WRAPPED is missing");
    auto view = envelope::parse(*w);
    if (!view)
        throw KeychainError(ErrorCode::BadRequest,
                            "WRAPPED is not a KCW1 wrapped key (magic \"KCW1\", " +
                                std::to_string(envelope::kOverhead + 1) + " to " +
                                std::to_string(envelope::kOverhead + envelope::kMaxDataKeySize) + " bytes)");
    return *view;
}

// True when the selected key is present and is an AES key held in this process's memory; the
// key found goes to `found` (when given).
bool in_memory_kek(const Keychain& keychain, const KeySelector& sel, Keychain::Described* found = nullptr) {
    try {
        auto d = keychain.get_described(sel);
        const bool in_memory = d.key->aes_key() != nullptr && !d.key->aes_material().empty();
        if (in_memory && found != nullptr) *found = std::move(d);
        return in_memory;
    } catch (const KeychainError&) {
        return false;  // absent or ambiguous: the worker's run reports it
    }
}

}  // namespace

bool Operations::runs_inline(Opcode op, const wire::Message& req, Keychain::Described* found) const {
    try {
        switch (op) {
            case Opcode::GenerateDataKey:
            case Opcode::Wrap: return in_memory_kek(keychain_, selector_from(req, Tag::KeyId, Tag::Label), found);
            case Opcode::Unwrap: {
                const auto w = req.get(Tag::Wrapped);
                const auto view = w ? envelope::parse(*w) : std::nullopt;
                return view && in_memory_kek(keychain_, KeySelector{view->kek_id, {}}, found);
            }
            case Opcode::Rewrap: {
                const auto w = req.get(Tag::Wrapped);
                const auto view = w ? envelope::parse(*w) : std::nullopt;
                return view && in_memory_kek(keychain_, KeySelector{view->kek_id, {}}) &&
                       in_memory_kek(keychain_, selector_from(req, Tag::TargetKeyId, Tag::TargetLabel));
            }
            default: return false;
        }
    } catch (const std::exception&) {
        return false;  // a malformed selector: the worker's run reports it
    }
}

WipingBuffer Operations::generate_data_key(const wire::Message& req, const Caller& caller,
                                      const Keychain::Described* found) {
    require_unlocked();
    const auto k = kek_check(authorized_key(caller, Opcode::GenerateDataKey, selector_from(req, Tag::KeyId, Tag::Label), found));
    SecretBytes data_key(32);
    crypto_backend().random(data_key.span());
    const auto wrapped = envelope::wrap(k->id(), *k->aes_key(), data_key.span(), context_of(req));
    return MessageBuilder(reply_opcode(Opcode::GenerateDataKey), req.request_id)
        .bytes(Tag::KeyId, k->id().bytes())
        .bytes(Tag::DataKey, data_key.span())
        .bytes(Tag::Wrapped, wrapped)
        .finish();
}

WipingBuffer Operations::wrap(const wire::Message& req, const Caller& caller,
                                      const Keychain::Described* found) {
    require_unlocked();
    const auto dk = req.get(Tag::DataKey);
    if (!dk) throw KeychainError(ErrorCode::BadRequest, "WRAP needs DATA_KEY");
    const auto k = kek_check(authorized_key(caller, Opcode::Wrap, selector_from(req, Tag::KeyId, Tag::Label), found));
    const auto wrapped = envelope::wrap(k->id(), *k->aes_key(), *dk, context_of(req));
    return MessageBuilder(reply_opcode(Opcode::Wrap), req.request_id)
        .bytes(Tag::KeyId, k->id().bytes())
        .bytes(Tag::Wrapped, wrapped)
        .finish();
}

WipingBuffer Operations::unwrap(const wire::Message& req, const Caller& caller,
                                      const Keychain::Described* found) {
    require_unlocked();
    const auto view = parse_wrapped(req);
    const auto k = kek_check(authorized_key(caller, Opcode::Unwrap, KeySelector{view.kek_id, {}}, found));
    const SecretBytes dk = envelope::unwrap(*k->aes_key(), view, context_of(req));
    return MessageBuilder(reply_opcode(Opcode::Unwrap), req.request_id)
        .bytes(Tag::KeyId, k->id().bytes())
        .bytes(Tag::DataKey, dk.span())
        .finish();
}

WipingBuffer Operations::rewrap(const wire::Message& req, const Caller& caller) {
    require_unlocked();
    const auto view = parse_wrapped(req);
    // Both keys must be allowed: rewrap moves a data key from one KEK to the other.
    const auto from = kek_check(authorized_key(caller, Opcode::Rewrap, KeySelector{view.kek_id, {}}));
    const auto to = kek_check(authorized_key(caller, Opcode::Rewrap, selector_from(req, Tag::TargetKeyId, Tag::TargetLabel)));
    const SecretBytes dk = envelope::unwrap(*from->aes_key(), view, context_of(req));
    const auto wrapped = envelope::wrap(to->id(), *to->aes_key(), dk.span(), context_of(req));
    return MessageBuilder(reply_opcode(Opcode::Rewrap), req.request_id)
        .bytes(Tag::KeyId, to->id().bytes())
        .bytes(Tag::Wrapped, wrapped)
        .finish();
}

}  // namespace keychaind
