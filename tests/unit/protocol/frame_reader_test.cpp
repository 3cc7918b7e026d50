// FrameReader: length-prefixed frames out of a byte stream, whatever the chunking.
#include <catch2/catch.hpp>

#include "protocol/message.h"
#include "wire_bytes.h"

using namespace keychaind::wire;
using keychaind::wire::test::hex_bytes;
using keychaind::wire::test::plain;

namespace {

std::vector<uint8_t> frame(uint8_t opcode, uint32_t request_id, size_t data_bytes = 0) {
    MessageBuilder b(opcode, request_id);
    if (data_bytes) b.bytes(Tag::Data, std::vector<uint8_t>(data_bytes, static_cast<uint8_t>(request_id)));
    return plain(std::move(b).finish());
}

std::string decode_error(FrameReader& r) {
    try {
        (void)r.next();
    } catch (const DecodeError& e) {
        return e.what();
    }
    FAIL("no DecodeError");
    return {};
}

}  // namespace

TEST_CASE("an incomplete length prefix yields no frame yet", "[protocol][frame]") {
    const auto f = frame(0x01, 7);
    FrameReader r(kDefaultMaxFrame);
    REQUIRE_FALSE(r.next());
    for (size_t i = 0; i < 3; ++i) {
        r.append(std::span<const uint8_t>(f).subspan(i, 1));
        REQUIRE_FALSE(r.next());
        REQUIRE(r.buffered() == i + 1);
    }
}

TEST_CASE("an incomplete body yields no frame until its last byte arrives", "[protocol][frame]") {
    const auto f = frame(0x04, 9, 100);
    FrameReader r(kDefaultMaxFrame);
    r.append(std::span<const uint8_t>(f).first(f.size() - 1));
    REQUIRE_FALSE(r.next());
    REQUIRE_FALSE(r.next());  // asking again changes nothing
    REQUIRE(r.buffered() == f.size() - 1);
    r.append(std::span<const uint8_t>(f).last(1));
    const auto body = r.next();
    REQUIRE(body);
    REQUIRE(std::vector<uint8_t>(body->begin(), body->end()) ==
            std::vector<uint8_t>(f.begin() + 4, f.end()));
    REQUIRE(r.buffered() == 0);
    REQUIRE_FALSE(r.next());
}

TEST_CASE("a frame split byte by byte comes out whole once", "[protocol][frame]") {
    const auto f = frame(0x08, 0x2a, 300);
    FrameReader r(kDefaultMaxFrame);
    size_t frames = 0;
    for (size_t i = 0; i < f.size(); ++i) {
        r.append(std::span<const uint8_t>(f).subspan(i, 1));
        while (auto body = r.next()) {
            ++frames;
            REQUIRE(i == f.size() - 1);
            const Message m = decode(*body);
            REQUIRE(m.request_id == 0x2a);
            REQUIRE(m.get(Tag::Data)->size() == 300);
        }
    }
    REQUIRE(frames == 1);
}

TEST_CASE("many frames in one append come out in order", "[protocol][frame]") {
    std::vector<uint8_t> stream;
    for (uint32_t id = 1; id <= 50; ++id) {
        const auto f = frame(static_cast<uint8_t>(1 + id % 16), id, id * 3);
        stream.insert(stream.end(), f.begin(), f.end());
    }
    const auto partial = frame(0x02, 51, 10);
    stream.insert(stream.end(), partial.begin(), partial.begin() + 7);
    FrameReader r(kDefaultMaxFrame);
    r.append(stream);
    for (uint32_t id = 1; id <= 50; ++id) {
        const auto body = r.next();
        REQUIRE(body);
        const Message m = decode(*body);
        REQUIRE(m.request_id == id);
        REQUIRE(m.opcode == 1 + id % 16);
        REQUIRE(m.get(Tag::Data)->size() == id * 3);
    }
    REQUIRE_FALSE(r.next());
    REQUIRE(r.buffered() == 7);
    r.append(std::span<const uint8_t>(partial).subspan(7));
    REQUIRE(decode(*r.next()).request_id == 51);
}

TEST_CASE("frames keep coming out right after the reader compacts its buffer", "[protocol][frame]") {
    // Over 64 KiB consumed while a partial frame waits: the reader moves the tail down.
    FrameReader r(kDefaultMaxFrame);
    uint32_t next_id = 0;
    for (int round = 0; round < 200; ++round) {
        // each round: the second half of one frame, then the first half of the next
        std::vector<uint8_t> chunk;
        const auto a = frame(0x04, static_cast<uint32_t>(round), 1000);
        if (round == 0) chunk.insert(chunk.end(), a.begin(), a.begin() + 500);
        chunk.insert(chunk.end(), a.begin() + 500, a.end());
        const auto b = frame(0x04, static_cast<uint32_t>(round + 1), 1000);
        chunk.insert(chunk.end(), b.begin(), b.begin() + 500);
        r.append(chunk);
        while (auto body = r.next()) REQUIRE(decode(*body).request_id == next_id++);
        REQUIRE(r.buffered() == 500);
    }
    REQUIRE(next_id == 200);
}

TEST_CASE("a length over the limit is refused before the body arrives", "[protocol][frame]") {
    FrameReader r(100);
    r.append(hex_bytes("00 00 00 65"));  // 101
    REQUIRE(decode_error(r) == "frame of 101 bytes exceeds the limit of 100");

    FrameReader huge(kDefaultMaxFrame);
    huge.append(hex_bytes("ff ff ff ff 01"));
    REQUIRE(decode_error(huge) == "frame of 4294967295 bytes exceeds the limit of 65536");
}

TEST_CASE("a frame of exactly the limit is accepted", "[protocol][frame]") {
    FrameReader r(100);
    const auto f = frame(0x04, 1, 100 - 6 - 6);
    REQUIRE(f.size() == 104);
    r.append(f);
    REQUIRE(r.next()->size() == 100);
}

TEST_CASE("lowering the limit applies to the next frame", "[protocol][frame]") {
    FrameReader r(kDefaultMaxFrame);
    r.set_max_frame(50);
    r.append(frame(0x04, 1, 60));
    REQUIRE(decode_error(r) == "frame of 72 bytes exceeds the limit of 50");
}

TEST_CASE("a zero-length frame is refused", "[protocol][frame]") {
    FrameReader r(kDefaultMaxFrame);
    r.append(hex_bytes("00 00 00 00"));
    REQUIRE(decode_error(r) == "zero-length frame");
}
