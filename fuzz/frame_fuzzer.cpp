// Fuzz target: the wire frame reader and message decoder (daemon/protocol/message.cpp), fed the
// byte stream a client could send, in the pieces recv() could cut it into.
#include <array>
#include <cstdlib>
#include <cstring>

#include "fuzz_input.h"
#include "protocol/message.h"

using namespace keychaind;
using namespace keychaind::wire;

namespace {

// A decoded message encoded again must give the bytes it came from.
void check_round_trip(const Message& m, std::span<const uint8_t> body) {
    MessageBuilder b(m.opcode, m.request_id);
    for (const Field& f : m.fields) b.bytes(static_cast<Tag>(f.tag), f.value);
    const WipingBuffer frame = b.finish();
    if (frame.size() != body.size() + kLengthPrefixSize ||
        std::memcmp(frame.data() + kLengthPrefixSize, body.data(), body.size()) != 0)
        std::abort();
}

// The typed read a handler makes of each field present (wire.h gives each tag's type), once per
// tag: throwing for every tag and width would make an input cost milliseconds.
void read_every_field(const Message& m) {
    std::array<bool, 256> seen{};
    for (const Field& f : m.fields) {
        if (f.tag >= seen.size() || seen[f.tag]) continue;
        seen[f.tag] = true;
        const auto tag = static_cast<Tag>(f.tag);
        try {
            switch (tag) {
                case Tag::Algorithm: case Tag::ErrorCode: case Tag::Kind: case Tag::Usages:
                case Tag::Tethered: case Tag::Present: case Tag::EventType: case Tag::Locked:
                case Tag::IncludeAbsent: (void)m.get_u8(tag); break;
                case Tag::TimeoutMs: case Tag::Bits: case Tag::Count: (void)m.get_u32(tag); break;
                case Tag::Expires: case Tag::UptimeSeconds: (void)m.get_u64(tag); break;
                case Tag::Label: case Tag::Message: case Tag::Source: case Tag::TargetLabel:
                case Tag::Version: case Tag::Backend: case Tag::Reason: case Tag::TokenUri:
                    for (const auto& v : m.get_all(tag)) (void)is_utf8(fuzz::as_text(v));
                    (void)m.get_string(tag);
                    break;
                case Tag::KeyInfo:
                    for (const auto& v : m.get_all(tag)) (void)decode_fields(v);
                    break;
                default: (void)m.get(tag); break;
            }
        } catch (const DecodeError&) {
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::FuzzInput in(data, size);
    // The first byte picks the frame limit and how recv() cuts the stream.
    const uint8_t shape = in.u8();
    const size_t max_frame = (shape & 1) != 0 ? 256 : kDefaultMaxFrame;
    const size_t piece = (shape >> 1) == 0 ? size : (shape >> 1);
    FrameReader reader(max_frame);
    const auto stream = in.rest();
    try {
        for (size_t off = 0; off < stream.size(); off += piece) {
            reader.append(stream.subspan(off, std::min(piece, stream.size() - off)));
            while (auto body = reader.next()) {
                if (body->size() > max_frame) std::abort();
                Message m;
                try {
                    m = decode(*body);
                } catch (const DecodeError&) {
                    return 0;  // the server closes the connection here
                }
                check_round_trip(m, *body);
                read_every_field(m);
            }
        }
    } catch (const DecodeError&) {
        // A zero or oversized length: the connection is closed.
    }
    return 0;
}
