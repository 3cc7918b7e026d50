// Wire constants: opcodes, field tags, limits (docs/protocol.md is the reference).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace keychaind::wire {

inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kLengthPrefixSize = 4;
inline constexpr size_t kHeaderSize = 1 + 1 + 4;  // version, opcode, request id
inline constexpr size_t kFieldHeaderSize = 2 + 4;  // tag, length
inline constexpr size_t kDefaultMaxFrame = 64 * 1024;
inline constexpr size_t kAbsoluteMaxFrame = 1024 * 1024;
inline constexpr size_t kMaxNesting = 2;  // KEY_INFO inside a reply, nothing deeper

enum class Opcode : uint8_t {
    Status = 0x01,
    ListKeys = 0x02,
    GetPublic = 0x03,
    Sign = 0x04,
    Decrypt = 0x05,
    GenerateDataKey = 0x06,
    Wrap = 0x07,
    Unwrap = 0x08,
    Rewrap = 0x09,
    Discover = 0x0A,
    Provide = 0x0B,
    Forget = 0x0C,
    Lock = 0x0D,
    Unlock = 0x0E,
    Wait = 0x0F,
    Subscribe = 0x10,
    // Replies: a success reply carries the request's opcode with this bit set.
    ReplyBit = 0x80,
    Event = 0xFE,  // unsolicited, on a SUBSCRIBE's request id
    Error = 0xFF,
};

inline constexpr uint8_t kLastRequestOpcode = 0x10;
std::optional<Opcode> request_opcode(uint8_t v);
std::string_view opcode_name(Opcode op);

enum class Tag : uint16_t {
    KeyId = 0x01,           // 16 or 32 raw bytes
    Label = 0x02,           // UTF-8
    Algorithm = 0x03,       // u8: SignAlgorithm or DecryptAlgorithm
    Data = 0x04,            // digest to sign, ciphertext to decrypt
    Context = 0x05,         // envelope AAD bytes
    DataKey = 0x06,         // secret: a data key
    Wrapped = 0x07,         // KCW1 bytes
    TimeoutMs = 0x08,       // u32
    KeyInfo = 0x09,         // nested fields, repeatable
    PublicKey = 0x0A,       // SubjectPublicKeyInfo DER
    Certificate = 0x0B,     // DER, repeatable, leaf first
    Signature = 0x0C,
    ErrorCode = 0x0D,       // u8
    Message = 0x0E,         // UTF-8
    Passphrase = 0x0F,      // secret
    EncodedKey = 0x10,      // secret: 64 hex digits or 44 base64 characters
    Kind = 0x11,            // u8 KeyKind
    Bits = 0x12,            // u32
    Usages = 0x13,          // u8 bitmask
    Source = 0x14,          // UTF-8, repeatable
    Tethered = 0x15,        // u8 0/1
    Expires = 0x16,         // u64 seconds since the epoch
    Present = 0x17,         // u8 0/1
    EventType = 0x18,       // u8 1 added, 2 removed
    TargetKeyId = 0x19,     // REWRAP: the new KEK
    TargetLabel = 0x1A,
    Plaintext = 0x1B,       // secret: DECRYPT result
    Count = 0x1C,           // u32
    Version = 0x1D,         // UTF-8 daemon version
    Backend = 0x1E,         // UTF-8 crypto backend
    Locked = 0x1F,          // u8
    UptimeSeconds = 0x20,   // u64
    IncludeAbsent = 0x21,   // u8
    Reason = 0x22,          // UTF-8: why a key was removed
    Pin = 0x23,             // secret: a token PIN (PROVIDE)
    TokenUri = 0x24,        // UTF-8
};

}  // namespace keychaind::wire
