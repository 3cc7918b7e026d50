// TLV encoding and decoding of messages, and the frame reader.
#include "protocol/message.h"

#include <cstring>

#include "protocol/buffer_pool.h"

namespace keychaind::wire {

uint32_t read_be32(const uint8_t* p) {
    return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
void put_be32(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 24);
    p[1] = static_cast<uint8_t>(v >> 16);
    p[2] = static_cast<uint8_t>(v >> 8);
    p[3] = static_cast<uint8_t>(v);
}

std::optional<Opcode> request_opcode(uint8_t v) {
    if (v >= 1 && v <= kLastRequestOpcode) return static_cast<Opcode>(v);
    return std::nullopt;
}

std::string_view opcode_name(Opcode op) {
    switch (op) {
        case Opcode::Status: return "STATUS";
        case Opcode::ListKeys: return "LIST_KEYS";
        case Opcode::GetPublic: return "GET_PUBLIC";
        case Opcode::Sign: return "SIGN";
        case Opcode::Decrypt: return "DECRYPT";
        case Opcode::GenerateDataKey: return "GENERATE_DATA_KEY";
        case Opcode::Wrap: return "WRAP";
        case Opcode::Unwrap: return "UNWRAP";
        case Opcode::Rewrap: return "REWRAP";
        case Opcode::Discover: return "DISCOVER";
        case Opcode::Provide: return "PROVIDE";
        case Opcode::Forget: return "FORGET";
        case Opcode::Lock: return "LOCK";
        case Opcode::Unlock: return "UNLOCK";
        case Opcode::Wait: return "WAIT";
        case Opcode::Subscribe: return "SUBSCRIBE";
        case Opcode::ReplyBit: return "REPLY";
        case Opcode::Event: return "EVENT";
        case Opcode::Error: return "ERROR";
    }
    return "UNKNOWN";
}

bool is_utf8(std::string_view s) {
    size_t i = 0;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    while (i < s.size()) {
        unsigned char c = p[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) { ++i; continue; }
        if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
        else return false;
        for (size_t k = 1; k <= n; ++k) {
            if (i + k >= s.size() || (p[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

std::vector<Field> decode_fields(std::span<const uint8_t> b) {
    std::vector<Field> out;
    decode_fields_into(out, b);
    return out;
}

void decode_fields_into(std::vector<Field>& out, std::span<const uint8_t> b) {
    out.clear();
    size_t pos = 0;
    while (pos < b.size()) {
        if (b.size() - pos < kFieldHeaderSize)
            throw DecodeError("truncated field header at byte " + std::to_string(pos));
        const uint16_t tag = static_cast<uint16_t>(b[pos] << 8 | b[pos + 1]);
        const uint32_t len = read_be32(&b[pos + 2]);
        pos += kFieldHeaderSize;
        if (len > b.size() - pos)
            throw DecodeError("field " + std::to_string(tag) + " claims " + std::to_string(len) +
                              " bytes, only " + std::to_string(b.size() - pos) + " remain");
        if (tag == 0) throw DecodeError("field tag 0 is reserved");
        out.push_back({tag, b.subspan(pos, len)});
        pos += len;
    }
}

Message decode(std::span<const uint8_t> b) {
    Message m;
    decode_into(m, b);
    return m;
}

void decode_into(Message& m, std::span<const uint8_t> b) {
    m.fields.clear();
    if (b.size() < kHeaderSize)
        throw DecodeError("message of " + std::to_string(b.size()) + " bytes is shorter than the " +
                          std::to_string(kHeaderSize) + "-byte header");
    m.version = b[0];
    m.opcode = b[1];
    m.request_id = read_be32(&b[2]);
    if (m.version != kVersion)
        throw DecodeError("protocol version " + std::to_string(m.version) + " is not supported (want " +
                          std::to_string(kVersion) + ")");
    decode_fields_into(m.fields, b.subspan(kHeaderSize));
}

std::optional<std::span<const uint8_t>> Message::get(Tag t) const {
    std::optional<std::span<const uint8_t>> r;
    for (const auto& f : fields) {
        if (f.tag != static_cast<uint16_t>(t)) continue;
        if (r) throw DecodeError("field " + std::to_string(f.tag) + " appears more than once");
        r = f.value;
    }
    return r;
}

std::vector<std::span<const uint8_t>> Message::get_all(Tag t) const {
    std::vector<std::span<const uint8_t>> r;
    for (const auto& f : fields)
        if (f.tag == static_cast<uint16_t>(t)) r.push_back(f.value);
    return r;
}

namespace {
template <size_t N>
std::optional<uint64_t> get_uint(const Message& m, Tag t) {
    auto v = m.get(t);
    if (!v) return std::nullopt;
    if (v->size() != N)
        throw DecodeError("field " + std::to_string(static_cast<int>(t)) + " must be " +
                          std::to_string(N) + " bytes, got " + std::to_string(v->size()));
    uint64_t r = 0;
    for (uint8_t c : *v) r = r << 8 | c;
    return r;
}
}  // namespace

std::optional<uint8_t> Message::get_u8(Tag t) const {
    auto v = get_uint<1>(*this, t);
    return v ? std::optional<uint8_t>(static_cast<uint8_t>(*v)) : std::nullopt;
}
std::optional<uint32_t> Message::get_u32(Tag t) const {
    auto v = get_uint<4>(*this, t);
    return v ? std::optional<uint32_t>(static_cast<uint32_t>(*v)) : std::nullopt;
}
std::optional<uint64_t> Message::get_u64(Tag t) const { return get_uint<8>(*this, t); }

std::optional<std::string> Message::get_string(Tag t) const {
    auto v = get(t);
    if (!v) return std::nullopt;
    std::string s(reinterpret_cast<const char*>(v->data()), v->size());
    if (!is_utf8(s) || s.find('\0') != std::string::npos)
        throw DecodeError("field " + std::to_string(static_cast<int>(t)) + " is not valid UTF-8 text");
    return s;
}

MessageBuilder::MessageBuilder(uint8_t opcode, uint32_t request_id) : buf_(take_buffer()), framed_(true) {
    // Most replies fit: one allocation for a fresh buffer rather than a few as it grows.
    if (buf_.capacity() < 256) buf_.reserve(256);
    buf_.resize(kLengthPrefixSize + kHeaderSize);
    buf_[4] = kVersion;
    buf_[5] = opcode;
    put_be32(&buf_[6], request_id);
}

MessageBuilder MessageBuilder::fields_only() { return MessageBuilder(); }

MessageBuilder& MessageBuilder::bytes(Tag t, std::span<const uint8_t> v) {
    const auto tag = static_cast<uint16_t>(t);
    uint8_t h[kFieldHeaderSize] = {static_cast<uint8_t>(tag >> 8), static_cast<uint8_t>(tag)};
    put_be32(h + 2, static_cast<uint32_t>(v.size()));
    buf_.insert(buf_.end(), h, h + kFieldHeaderSize);
    buf_.insert(buf_.end(), v.begin(), v.end());
    return *this;
}
MessageBuilder& MessageBuilder::str(Tag t, std::string_view v) {
    return bytes(t, {reinterpret_cast<const uint8_t*>(v.data()), v.size()});
}
MessageBuilder& MessageBuilder::u8(Tag t, uint8_t v) { return bytes(t, {&v, 1}); }
MessageBuilder& MessageBuilder::u32(Tag t, uint32_t v) {
    uint8_t b[4];
    put_be32(b, v);
    return bytes(t, b);
}
MessageBuilder& MessageBuilder::u64(Tag t, uint64_t v) {
    uint8_t b[8];
    for (int i = 7; i >= 0; --i, v >>= 8) b[i] = static_cast<uint8_t>(v);
    return bytes(t, b);
}
MessageBuilder& MessageBuilder::nested(Tag t, const MessageBuilder& inner) {
    return bytes(t, inner.body());
}
std::span<const uint8_t> MessageBuilder::body() const {
    return framed_ ? std::span<const uint8_t>(buf_).subspan(kLengthPrefixSize)
                   : std::span<const uint8_t>(buf_);
}
WipingBuffer MessageBuilder::finish() {
    if (framed_) put_be32(buf_.data(), static_cast<uint32_t>(buf_.size() - kLengthPrefixSize));
    return std::move(buf_);
}

void FrameReader::append(std::span<const uint8_t> data) {
    // Consumed frames may hold PROVIDE'd secrets: wipe them, since clear() and erase() leave the
    // old bytes in the vector's spare capacity.
    if (pos_ > 0 && pos_ == buf_.size()) {
        secure_wipe(buf_.data(), buf_.size());
        buf_.clear();
        pos_ = 0;
    } else if (pos_ > 64 * 1024) {
        const size_t old_size = buf_.size();
        buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(pos_));
        secure_wipe(buf_.data() + buf_.size(), old_size - buf_.size());
        pos_ = 0;
    }
    buf_.insert(buf_.end(), data.begin(), data.end());
}

std::optional<WipingBuffer> FrameReader::next() {
    const auto view = next_view();
    if (!view) return std::nullopt;
    return WipingBuffer(view->begin(), view->end());
}

std::optional<std::span<const uint8_t>> FrameReader::next_view() {
    if (buffered() < kLengthPrefixSize) return std::nullopt;
    const uint32_t len = read_be32(&buf_[pos_]);
    if (len == 0) throw DecodeError("zero-length frame");
    if (len > max_frame_)
        throw DecodeError("frame of " + std::to_string(len) + " bytes exceeds the limit of " +
                          std::to_string(max_frame_));
    if (buffered() - kLengthPrefixSize < len) return std::nullopt;
    const std::span<const uint8_t> body(buf_.data() + pos_ + kLengthPrefixSize, len);
    pos_ += kLengthPrefixSize + len;
    return body;
}

}  // namespace keychaind::wire
