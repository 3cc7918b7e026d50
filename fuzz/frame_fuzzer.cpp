// Fuzz target: the wire frame reader and message decoder (daemon/protocol/message.cpp), fed the
// byte stream a client could send, in the pieces recv() could cut it into.
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

// Every typed read a handler could make of this message.
void read_every_field(const Message& m) {
    for (uint16_t t = 1; t <= static_cast<uint16_t>(Tag::TokenUri); ++t) {
        const auto tag = static_cast<Tag>(t);
        try { (void)m.get_u8(tag); } catch (const DecodeError&) {}
        try { (void)m.get_u32(tag); } catch (const DecodeError&) {}
        try { (void)m.get_u64(tag); } catch (const DecodeError&) {}
        try { (void)m.get_string(tag); } catch (const DecodeError&) {}
        for (const auto& v : m.get_all(tag)) {
            if (tag != Tag::KeyInfo) continue;
            try { (void)decode_fields(v); } catch (const DecodeError&) {}
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
