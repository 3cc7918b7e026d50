// Message decoding (header, TLV fields, typed reads) and MessageBuilder round trips.
#include <catch2/catch.hpp>

#include "protocol/message.h"
#include "wire_bytes.h"

using namespace keychaind::wire;
using keychaind::wire::test::bytes_of;
using keychaind::wire::test::hex_bytes;
using keychaind::wire::test::plain;

namespace {

std::string decode_error(std::span<const uint8_t> body) {
    try {
        (void)decode(body);
    } catch (const DecodeError& e) {
        return e.what();
    }
    FAIL("no DecodeError");
    return {};
}

// A frame body: header (version 1, opcode, request id 5) then `fields_hex`.
std::vector<uint8_t> body(std::string_view fields_hex, uint8_t opcode = 0x04) {
    auto b = hex_bytes("01 00 00 00 00 05");
    b[1] = opcode;
    const auto f = hex_bytes(fields_hex);
    b.insert(b.end(), f.begin(), f.end());
    return b;
}

}  // namespace

TEST_CASE("a message shorter than the 6-byte header is refused", "[protocol][message]") {
    for (size_t n = 0; n < kHeaderSize; ++n) {
        INFO(n << " bytes");
        const auto b = std::vector<uint8_t>(n, 1);
        REQUIRE(decode_error(b) == "message of " + std::to_string(n) +
                                       " bytes is shorter than the 6-byte header");
    }
}

TEST_CASE("a message of another protocol version is refused", "[protocol][message]") {
    for (unsigned version : {0u, 2u, 0x81u, 0xffu}) {
        auto b = body("");
        b[0] = static_cast<uint8_t>(version);
        REQUIRE(decode_error(b) == "protocol version " + std::to_string(version) +
                                       " is not supported (want 1)");
    }
}

TEST_CASE("a header alone decodes to a message without fields", "[protocol][message]") {
    const auto b = hex_bytes("01 0c de ad be ef");
    const Message m = decode(b);
    REQUIRE(m.version == 1);
    REQUIRE(m.opcode == 0x0c);
    REQUIRE(m.request_id == 0xdeadbeef);
    REQUIRE(m.fields.empty());
    REQUIRE_FALSE(m.get(Tag::KeyId));
    REQUIRE_FALSE(m.get_u8(Tag::Algorithm));
    REQUIRE_FALSE(m.get_string(Tag::Label));
}

TEST_CASE("a field that runs past the end of the frame is refused", "[protocol][message]") {
    REQUIRE(decode_error(body("00 04 00 00 00 05  01 02 03 04")) ==
            "field 4 claims 5 bytes, only 4 remain");
    REQUIRE(decode_error(body("00 04 ff ff ff ff  01")) ==
            "field 4 claims 4294967295 bytes, only 1 remain");
    // A good field, then one that overruns.
    REQUIRE(decode_error(body("00 03 00 00 00 01  07  00 04 00 00 00 02  01")) ==
            "field 4 claims 2 bytes, only 1 remain");
}

TEST_CASE("a truncated field header is refused", "[protocol][message]") {
    for (std::string_view tail : {"00", "00 04", "00 04 00 00 00"}) {
        INFO(tail);
        REQUIRE(decode_error(body(tail)) == "truncated field header at byte 0");
    }
    REQUIRE(decode_error(body("00 03 00 00 00 01  07  00 04")) == "truncated field header at byte 7");
}

TEST_CASE("field tag 0 is refused", "[protocol][message]") {
    REQUIRE(decode_error(body("00 00 00 00 00 00")) == "field tag 0 is reserved");
    REQUIRE(decode_error(body("00 02 00 00 00 01  61  00 00 00 00 00 01  61")) ==
            "field tag 0 is reserved");
}

TEST_CASE("zero-length fields and unknown tags decode, and the server decides about them",
          "[protocol][message]") {
    const auto b = body("00 05 00 00 00 00  ab cd 00 00 00 01  ff");
    const Message m = decode(b);
    REQUIRE(m.fields.size() == 2);
    REQUIRE(m.get(Tag::Context));
    REQUIRE(m.get(Tag::Context)->empty());
    REQUIRE(m.fields[1].tag == 0xabcd);
    REQUIRE(m.fields[1].value.size() == 1);
}

TEST_CASE("a singular field sent twice makes get throw, get_all returns both",
          "[protocol][message]") {
    const auto b = body("00 02 00 00 00 01  61  00 03 00 00 00 01  07  00 02 00 00 00 01  62");
    const Message m = decode(b);
    REQUIRE_THROWS_MATCHES(m.get(Tag::Label), DecodeError,
                           Catch::Matchers::Message("field 2 appears more than once"));
    REQUIRE_THROWS_AS(m.get_string(Tag::Label), DecodeError);
    REQUIRE_THROWS_AS(m.has(Tag::Label), DecodeError);
    const auto all = m.get_all(Tag::Label);
    REQUIRE(all.size() == 2);
    REQUIRE(all[0][0] == 'a');
    REQUIRE(all[1][0] == 'b');
    REQUIRE(m.get_u8(Tag::Algorithm) == 7);  // other fields are unaffected
    REQUIRE(m.get_all(Tag::Source).empty());
}

TEST_CASE("integer fields must have exactly their width", "[protocol][message]") {
    SECTION("u8") {
        REQUIRE(decode(body("00 03 00 00 00 01  fe")).get_u8(Tag::Algorithm) == 0xfe);
        for (std::string_view f : {"00 03 00 00 00 00", "00 03 00 00 00 02  00 01"}) {
            INFO(f);
            REQUIRE_THROWS_AS(decode(body(f)).get_u8(Tag::Algorithm), DecodeError);
        }
        REQUIRE_THROWS_MATCHES(decode(body("00 03 00 00 00 04  00 00 00 01")).get_u8(Tag::Algorithm),
                               DecodeError, Catch::Matchers::Message("field 3 must be 1 bytes, got 4"));
    }
    SECTION("u32") {
        REQUIRE(decode(body("00 08 00 00 00 04  00 36 ee 80")).get_u32(Tag::TimeoutMs) == 3600000u);
        REQUIRE(decode(body("00 08 00 00 00 04  ff ff ff ff")).get_u32(Tag::TimeoutMs) == 0xffffffffu);
        for (std::string_view f : {"00 08 00 00 00 01  01", "00 08 00 00 00 03  00 00 01",
                                   "00 08 00 00 00 05  00 00 00 00 01",
                                   "00 08 00 00 00 08  00 00 00 00 00 00 00 01"}) {
            INFO(f);
            REQUIRE_THROWS_AS(decode(body(f)).get_u32(Tag::TimeoutMs), DecodeError);
        }
    }
    SECTION("u64") {
        REQUIRE(decode(body("00 16 00 00 00 08  01 02 03 04 05 06 07 08")).get_u64(Tag::Expires) ==
                0x0102030405060708u);
        for (std::string_view f : {"00 16 00 00 00 04  00 00 00 01",
                                   "00 16 00 00 00 09  00 00 00 00 00 00 00 00 01"}) {
            INFO(f);
            REQUIRE_THROWS_AS(decode(body(f)).get_u64(Tag::Expires), DecodeError);
        }
    }
}

TEST_CASE("text fields must be UTF-8 without NUL", "[protocol][message]") {
    REQUIRE(decode(body("00 02 00 00 00 03  e2 82 ac")).get_string(Tag::Label) == "\xe2\x82\xac");
    REQUIRE(decode(body("00 02 00 00 00 00")).get_string(Tag::Label) == "");
    REQUIRE_THROWS_MATCHES(decode(body("00 02 00 00 00 03  61 00 62")).get_string(Tag::Label),
                           DecodeError, Catch::Matchers::Message("field 2 is not valid UTF-8 text"));
    REQUIRE_THROWS_AS(decode(body("00 02 00 00 00 02  c0 80")).get_string(Tag::Label), DecodeError);
    REQUIRE_THROWS_AS(decode(body("00 02 00 00 00 01  ff")).get_string(Tag::Label), DecodeError);
}

TEST_CASE("what MessageBuilder writes decodes to the same fields", "[protocol][message]") {
    const std::vector<uint8_t> raw{0x00, 0x01, 0xfe, 0xff};
    const std::vector<uint8_t> key_id(16, 0x3f);
    auto info = MessageBuilder::fields_only();
    info.bytes(Tag::KeyId, key_id).str(Tag::Label, "db").u8(Tag::Kind, 1).u32(Tag::Bits, 256);
    info.str(Tag::Source, "file:/a.4DKeyChain#0").str(Tag::Source, "identity:web");
    info.u64(Tag::Expires, 1'900'000'000).u8(Tag::Present, 1);

    auto frame = plain(MessageBuilder(static_cast<uint8_t>(Opcode::Wait) | 0x80, 0xfffffffe)
                           .bytes(Tag::Data, raw)
                           .bytes(Tag::Context, {})
                           .str(Tag::Message, "h\xc3\xa9llo")
                           .u8(Tag::Locked, 1)
                           .u32(Tag::Count, 0x01020304)
                           .u64(Tag::UptimeSeconds, 0xfedcba9876543210u)
                           .nested(Tag::KeyInfo, info)
                           .nested(Tag::KeyInfo, MessageBuilder::fields_only())
                           .finish());

    FrameReader r(kDefaultMaxFrame);
    r.append(frame);
    const auto b = r.next();
    REQUIRE(b);
    REQUIRE(b->size() + 4 == frame.size());
    const Message m = decode(*b);
    REQUIRE(m.version == kVersion);
    REQUIRE(m.opcode == 0x8f);
    REQUIRE(m.request_id == 0xfffffffe);
    REQUIRE(m.fields.size() == 8);
    REQUIRE(std::vector<uint8_t>(m.get(Tag::Data)->begin(), m.get(Tag::Data)->end()) == raw);
    REQUIRE(m.get(Tag::Context)->empty());
    REQUIRE(m.get_string(Tag::Message) == "h\xc3\xa9llo");
    REQUIRE(m.get_u8(Tag::Locked) == 1);
    REQUIRE(m.get_u32(Tag::Count) == 0x01020304u);
    REQUIRE(m.get_u64(Tag::UptimeSeconds) == 0xfedcba9876543210u);

    const auto infos = m.get_all(Tag::KeyInfo);
    REQUIRE(infos.size() == 2);
    REQUIRE(infos[1].empty());
    Message inner;
    inner.fields = decode_fields(infos[0]);
    REQUIRE(inner.fields.size() == 8);
    REQUIRE(std::vector<uint8_t>(inner.get(Tag::KeyId)->begin(), inner.get(Tag::KeyId)->end()) ==
            key_id);
    REQUIRE(inner.get_string(Tag::Label) == "db");
    REQUIRE(inner.get_u8(Tag::Kind) == 1);
    REQUIRE(inner.get_u32(Tag::Bits) == 256u);
    REQUIRE(inner.get_all(Tag::Source).size() == 2);
    REQUIRE(inner.get_u64(Tag::Expires) == 1'900'000'000u);
    REQUIRE(inner.get_u8(Tag::Present) == 1);
}

TEST_CASE("MessageBuilder writes big-endian integers and the length prefix", "[protocol][message]") {
    const auto f = plain(MessageBuilder(0x07, 0x01020304)
                             .u32(Tag::TimeoutMs, 0x0a0b0c0d)
                             .u64(Tag::Expires, 1)
                             .bytes(Tag::DataKey, bytes_of("k"))
                             .finish());
    REQUIRE(f == hex_bytes("00 00 00 25  01 07 01 02 03 04"
                           "00 08 00 00 00 04  0a 0b 0c 0d"
                           "00 16 00 00 00 08  00 00 00 00 00 00 00 01"
                           "00 06 00 00 00 01  6b"));
}

TEST_CASE("a fields-only builder has no header or length prefix", "[protocol][message]") {
    auto inner = MessageBuilder::fields_only();
    inner.u8(Tag::Kind, 3);
    REQUIRE(std::vector<uint8_t>(inner.body().begin(), inner.body().end()) ==
            hex_bytes("00 11 00 00 00 01 03"));
    auto outer = MessageBuilder(0x01, 1);
    REQUIRE(std::vector<uint8_t>(outer.body().begin(), outer.body().end()) ==
            hex_bytes("01 01 00 00 00 01"));
}

TEST_CASE("request_opcode knows exactly the request opcodes", "[protocol][message]") {
    for (unsigned v = 0; v <= 0xff; ++v) {
        const auto op = request_opcode(static_cast<uint8_t>(v));
        INFO("opcode " << v);
        if (v >= 0x01 && v <= 0x10) {
            REQUIRE(op);
            REQUIRE(static_cast<unsigned>(*op) == v);
            REQUIRE(opcode_name(*op) != "UNKNOWN");
        } else {
            REQUIRE_FALSE(op);  // replies, events, errors and unknown values: the server answers
        }
    }
    REQUIRE(opcode_name(Opcode::Status) == "STATUS");
    REQUIRE(opcode_name(Opcode::GenerateDataKey) == "GENERATE_DATA_KEY");
    REQUIRE(opcode_name(Opcode::Subscribe) == "SUBSCRIBE");
    REQUIRE(opcode_name(Opcode::Error) == "ERROR");
}

TEST_CASE("be32 helpers are big-endian", "[protocol][message]") {
    uint8_t b[4];
    put_be32(b, 0x11223344);
    REQUIRE(b[0] == 0x11);
    REQUIRE(b[3] == 0x44);
    REQUIRE(read_be32(b) == 0x11223344u);
}
