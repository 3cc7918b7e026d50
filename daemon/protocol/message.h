// Message: one decoded frame (header + TLV fields) and its encoder/decoder. Knows no sockets.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/secret_bytes.h"
#include "protocol/wire.h"

namespace keychaind::wire {

struct Field {
    uint16_t tag;
    std::span<const uint8_t> value;  // points into the decoded buffer
};

// A decoded message; field values are views into the buffer passed to decode().
struct Message {
    uint8_t version = kVersion;
    uint8_t opcode = 0;
    uint32_t request_id = 0;
    std::vector<Field> fields;

    // The only field with this tag; nullopt if absent. Throws DecodeError if repeated.
    std::optional<std::span<const uint8_t>> get(Tag t) const;
    std::vector<std::span<const uint8_t>> get_all(Tag t) const;
    bool has(Tag t) const { return get(t).has_value(); }
    // Typed reads; throw DecodeError when the field has the wrong width or is not UTF-8.
    std::optional<uint8_t> get_u8(Tag t) const;
    std::optional<uint32_t> get_u32(Tag t) const;
    std::optional<uint64_t> get_u64(Tag t) const;
    std::optional<std::string> get_string(Tag t) const;
};

class DecodeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Decodes a frame body (without its 4-byte length). nested=true decodes only TLVs (no header).
Message decode(std::span<const uint8_t> body);
// The same into `m`, reusing the capacity of its field list (the request path decodes into one
// Message per connection or thread: no allocation per request).
void decode_into(Message& m, std::span<const uint8_t> body);
std::vector<Field> decode_fields(std::span<const uint8_t> body);
void decode_fields_into(std::vector<Field>& out, std::span<const uint8_t> body);

bool is_utf8(std::string_view s);

// Builds a frame: the length prefix is filled in by finish(). The buffer wipes itself, since
// replies carry data keys.
class MessageBuilder {
public:
    MessageBuilder(uint8_t opcode, uint32_t request_id);
    MessageBuilder& bytes(Tag t, std::span<const uint8_t> v);
    MessageBuilder& str(Tag t, std::string_view v);
    MessageBuilder& u8(Tag t, uint8_t v);
    MessageBuilder& u32(Tag t, uint32_t v);
    MessageBuilder& u64(Tag t, uint64_t v);
    // Nested field: the TLVs of another builder created with fields_only().
    MessageBuilder& nested(Tag t, const MessageBuilder& inner);
    static MessageBuilder fields_only();
    // The full frame, length prefix included.
    WipingBuffer finish();  // leaves the builder empty
    std::span<const uint8_t> body() const;  // for nested builders

private:
    MessageBuilder() = default;
    WipingBuffer buf_;
    bool framed_ = false;
};

// Reads frames from a byte stream; enforces the frame size limit before buffering a body.
class FrameReader {
public:
    explicit FrameReader(size_t max_frame) : max_frame_(max_frame) {}
    void append(std::span<const uint8_t> data);
    // Next complete body, or nullopt if more bytes are needed. Throws DecodeError on a zero or
    // oversized length.
    std::optional<WipingBuffer> next();
    // The same without a copy: a view into the reader's buffer, valid until the next append().
    std::optional<std::span<const uint8_t>> next_view();
    size_t buffered() const { return buf_.size() - pos_; }
    void set_max_frame(size_t m) { max_frame_ = m; }

private:
    size_t max_frame_;
    WipingBuffer buf_;
    size_t pos_ = 0;
};

uint32_t read_be32(const uint8_t* p);
void put_be32(uint8_t* p, uint32_t v);

}  // namespace keychaind::wire
