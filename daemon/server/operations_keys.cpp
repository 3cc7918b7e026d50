// STATUS, LIST_KEYS, GET_PUBLIC, SIGN, DECRYPT.
#include <array>

#include "core/error.h"
#include "server/operations.h"

#ifndef KEYCHAIND_VERSION
#define KEYCHAIND_VERSION "0.0.0"
#endif

namespace keychaind {

using wire::MessageBuilder;
using wire::Opcode;
using wire::Tag;

namespace {
uint8_t reply_opcode(Opcode op) {
    return static_cast<uint8_t>(static_cast<uint8_t>(op) | static_cast<uint8_t>(Opcode::ReplyBit));
}
}  // namespace

WipingBuffer Operations::status(const wire::Message& req) {
    const auto up = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                     state_.started);
    return MessageBuilder(reply_opcode(Opcode::Status), req.request_id)
        .str(Tag::Version, KEYCHAIND_VERSION)
        .str(Tag::Backend, crypto_backend().name())
        .u32(Tag::Count, static_cast<uint32_t>(keychain_.size()))
        .u8(Tag::Locked, state_.locked.load() ? 1 : 0)
        .u64(Tag::UptimeSeconds, static_cast<uint64_t>(up.count()))
        .finish();
}

WipingBuffer Operations::list_keys(const wire::Message& req, const Caller& caller) {
    require_unlocked();
    const bool absent = req.get_u8(Tag::IncludeAbsent).value_or(0) != 0;
    MessageBuilder b(reply_opcode(Opcode::ListKeys), req.request_id);
    long long shown = 0;
    for (const auto& info : keychain_.list(absent)) {
        if (!access_.may_see(caller, policy::Operation::List, info)) continue;
        b.nested(Tag::KeyInfo, key_info_fields(info));
        ++shown;
    }
    AuditRecord r("decision");
    r.peer(caller.identity->peer).add("op", "list").add("result", "allow").add("keys_shown", shown);
    access_.audit_own_decision(Opcode::ListKeys, r);
    return std::move(b).finish();
}

WipingBuffer Operations::get_public(const wire::Message& req, const Caller& caller) {
    require_unlocked();
    const auto key = authorized_key(caller, Opcode::GetPublic, selector_from(req, Tag::KeyId, Tag::Label));
    if (key->kind() == KeyKind::Aes256)
        throw KeychainError(ErrorCode::Unsupported, "key " + key->id().hex() + " is an AES key; it has no public part");
    MessageBuilder b(reply_opcode(Opcode::GetPublic), req.request_id);
    b.bytes(Tag::KeyId, key->id().bytes())
        .u8(Tag::Kind, static_cast<uint8_t>(key->kind()))
        .u32(Tag::Bits, key->bits())
        .bytes(Tag::PublicKey, key->public_key_der());
    for (const auto& c : key->certificates()) b.bytes(Tag::Certificate, c);
    return std::move(b).finish();
}

WipingBuffer Operations::sign(const wire::Message& req, const Caller& caller) {
    require_unlocked();
    const auto alg = req.get_u8(Tag::Algorithm);
    if (!alg || !sign_algorithm_valid(*alg))
        throw KeychainError(ErrorCode::BadRequest, "SIGN needs ALGORITHM 1..11");
    const auto digest = req.get(Tag::Data);
    if (!digest || digest->empty()) throw KeychainError(ErrorCode::BadRequest, "SIGN needs DATA (the digest; for ed25519 the message)");
    const auto key = authorized_key(caller, Opcode::Sign, selector_from(req, Tag::KeyId, Tag::Label));
    if (!(key->usages() & kUsageSign) || key->private_key() == nullptr)
        throw KeychainError(ErrorCode::Unsupported, "key " + key->id().hex() + " cannot sign");
    std::array<uint8_t, PrivateKey::kMaxSignatureSize> sig;  // on the stack: no allocation per SIGN
    const size_t len = key->private_key()->sign_into(static_cast<SignAlgorithm>(*alg), *digest, sig);
    return MessageBuilder(reply_opcode(Opcode::Sign), req.request_id)
        .bytes(Tag::Signature, std::span<const uint8_t>(sig).first(len))
        .finish();
}

WipingBuffer Operations::decrypt(const wire::Message& req, const Caller& caller) {
    require_unlocked();
    const auto alg = req.get_u8(Tag::Algorithm);
    if (!alg || !decrypt_algorithm_valid(*alg))
        throw KeychainError(ErrorCode::BadRequest, "DECRYPT needs ALGORITHM 1 (rsa-oaep-sha1) or 2 (rsa-oaep-sha256)");
    const auto ct = req.get(Tag::Data);
    if (!ct) throw KeychainError(ErrorCode::BadRequest, "DECRYPT needs DATA (the ciphertext)");
    const auto key = authorized_key(caller, Opcode::Decrypt, selector_from(req, Tag::KeyId, Tag::Label));
    if (!(key->usages() & kUsageDecrypt) || key->private_key() == nullptr)
        throw KeychainError(ErrorCode::Unsupported, "key " + key->id().hex() + " cannot decrypt");
    const SecretBytes pt = key->private_key()->decrypt(static_cast<DecryptAlgorithm>(*alg), *ct);
    return MessageBuilder(reply_opcode(Opcode::Decrypt), req.request_id).bytes(Tag::Plaintext, pt.span()).finish();
}

}  // namespace keychaind
