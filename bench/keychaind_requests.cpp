// KeychaindRequests: a template frame per request kind; the request id is patched in place.
#include "keychaind_requests.h"

#include <stdexcept>

#include "child_process.h"
#include "core/unique_fd.h"

namespace keychaind::bench {
namespace {

constexpr size_t kIdOffset = wire::kLengthPrefixSize + 2;  // after length, version, opcode
constexpr uint8_t kErrorOpcode = static_cast<uint8_t>(wire::Opcode::Error);

void write_all(int fd, std::span<const uint8_t> data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error("write to keychaind failed");
        data = data.subspan(static_cast<size_t>(n));
    }
}

void read_exact(int fd, uint8_t* p, size_t n) {
    while (n > 0) {
        const ssize_t got = ::read(fd, p, n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) throw std::runtime_error("keychaind closed the connection");
        p += got;
        n -= static_cast<size_t>(got);
    }
}

}  // namespace

KeychaindRequests KeychaindRequests::sign(std::span<const uint8_t> key_id, SignAlgorithm alg,
                                          size_t digest_size) {
    const std::vector<uint8_t> digest(digest_size, 0x5c);
    wire::MessageBuilder b(static_cast<uint8_t>(wire::Opcode::Sign), 0);
    b.bytes(wire::Tag::KeyId, key_id).u8(wire::Tag::Algorithm, static_cast<uint8_t>(alg));
    b.bytes(wire::Tag::Data, digest);  // last, so the frame's last byte is the digest's
    std::vector<Template> t;
    t.push_back({b.finish(), true});
    return KeychaindRequests(std::move(t));
}

KeychaindRequests KeychaindRequests::unwrap(std::span<const uint8_t> wrapped) {
    wire::MessageBuilder b(static_cast<uint8_t>(wire::Opcode::Unwrap), 0);
    b.bytes(wire::Tag::Wrapped, wrapped);
    std::vector<Template> t;
    t.push_back({b.finish(), false});
    return KeychaindRequests(std::move(t));
}

KeychaindRequests KeychaindRequests::generate_data_key(std::span<const uint8_t> kek_id) {
    wire::MessageBuilder b(static_cast<uint8_t>(wire::Opcode::GenerateDataKey), 0);
    b.bytes(wire::Tag::KeyId, kek_id);
    std::vector<Template> t;
    t.push_back({b.finish(), false});
    return KeychaindRequests(std::move(t));
}

KeychaindRequests KeychaindRequests::mixed(std::vector<KeychaindRequests> parts) {
    std::vector<Template> t;
    for (auto& p : parts)
        for (auto& one : p.templates_) t.push_back(std::move(one));
    return KeychaindRequests(std::move(t));
}

void KeychaindRequests::append_request(uint32_t tag, std::vector<uint8_t>& out) const {
    // The slot is in the tag's low bits, the connection's sequence number above them.
    const Template& t = templates_[templates_.size() == 1 ? 0 : (tag >> 7) % templates_.size()];
    const size_t at = out.size();
    out.insert(out.end(), t.frame.begin(), t.frame.end());
    wire::put_be32(out.data() + at + kIdOffset, tag);
    if (t.vary_last_byte) out.back() = static_cast<uint8_t>(out.back() ^ (tag >> 7));
}

std::optional<uint32_t> KeychaindRequests::reply_tag(std::span<const uint8_t> body,
                                                     bool& ok) const {
    if (body.size() < wire::kHeaderSize || body[0] != wire::kVersion)
        throw std::runtime_error("keychaind sent a malformed reply");
    ok = body[1] != kErrorOpcode && (body[1] & static_cast<uint8_t>(wire::Opcode::ReplyBit)) != 0;
    return wire::read_be32(body.data() + 2);
}

CallResult call(const std::string& socket_path, wire::MessageBuilder& request) {
    UniqueFd fd(connect_unix(socket_path, false));
    if (!fd) throw std::runtime_error("connect " + socket_path + " failed");
    const WipingBuffer frame = request.finish();
    write_all(fd.get(), frame);
    uint8_t len_bytes[4];
    read_exact(fd.get(), len_bytes, 4);
    const uint32_t len = wire::read_be32(len_bytes);
    if (len == 0 || len > wire::kAbsoluteMaxFrame)
        throw std::runtime_error("keychaind sent a bad frame length");
    CallResult r;
    r.body.resize(len);
    read_exact(fd.get(), r.body.data(), len);
    r.message = wire::decode(r.body);
    if (r.message.opcode == kErrorOpcode)
        throw std::runtime_error("keychaind answered an error: " +
                                 r.message.get_string(wire::Tag::Message).value_or("(no message)"));
    return r;
}

std::vector<uint8_t> wrapped_data_key(const std::string& socket_path,
                                      std::span<const uint8_t> kek_id) {
    wire::MessageBuilder b(static_cast<uint8_t>(wire::Opcode::GenerateDataKey), 1);
    b.bytes(wire::Tag::KeyId, kek_id);
    const CallResult r = call(socket_path, b);
    const auto w = r.message.get(wire::Tag::Wrapped);
    if (!w) throw std::runtime_error("GENERATE_DATA_KEY reply has no WRAPPED field");
    return {w->begin(), w->end()};
}

uint32_t keys_present(const std::string& socket_path) {
    wire::MessageBuilder b(static_cast<uint8_t>(wire::Opcode::Status), 1);
    const CallResult r = call(socket_path, b);
    return r.message.get_u32(wire::Tag::Count).value_or(0);
}

}  // namespace keychaind::bench
