// The byte-level examples of docs/protocol.md ("Examples"), rebuilt with MessageBuilder.
#include <catch2/catch.hpp>

#include "protocol/message.h"
#include "wire_bytes.h"

using namespace keychaind::wire;
using keychaind::wire::test::hex_bytes;
using keychaind::wire::test::plain;

TEST_CASE("the documented STATUS request is what MessageBuilder writes", "[protocol][docs]") {
    const auto doc = hex_bytes("00 00 00 06  01 01 00 00 00 07");
    REQUIRE(plain(MessageBuilder(static_cast<uint8_t>(Opcode::Status), 7).finish()) == doc);
    const Message m = decode(std::span<const uint8_t>(doc).subspan(4));
    REQUIRE(m.opcode == 0x01);
    REQUIRE(m.request_id == 7);
    REQUIRE(m.fields.empty());
}

TEST_CASE("the documented STATUS reply is what MessageBuilder writes", "[protocol][docs]") {
    const auto doc = hex_bytes(
        "00 00 00 42  01 81 00 00 00 07\n"
        "00 1d 00 00 00 05  30 2e 31 2e 30\n"
        "00 1e 00 00 00 0c  6d 62 65 64 74 6c 73 2d 32 2e 32 38\n"
        "00 1c 00 00 00 04  00 00 00 02\n"
        "00 1f 00 00 00 01  00\n"
        "00 20 00 00 00 08  00 00 00 00 00 00 00 05\n");
    const auto built = plain(MessageBuilder(0x01 | 0x80, 7)
                                 .str(Tag::Version, "0.1.0")
                                 .str(Tag::Backend, "mbedtls-2.28")
                                 .u32(Tag::Count, 2)
                                 .u8(Tag::Locked, 0)
                                 .u64(Tag::UptimeSeconds, 5)
                                 .finish());
    REQUIRE(built == doc);
    REQUIRE(built.size() == 4 + 0x42);

    const Message m = decode(std::span<const uint8_t>(doc).subspan(4));
    REQUIRE(m.opcode == (static_cast<uint8_t>(Opcode::Status) | static_cast<uint8_t>(Opcode::ReplyBit)));
    REQUIRE(m.get_string(Tag::Version) == "0.1.0");
    REQUIRE(m.get_string(Tag::Backend) == "mbedtls-2.28");
    REQUIRE(m.get_u32(Tag::Count) == 2u);
    REQUIRE(m.get_u8(Tag::Locked) == 0);
    REQUIRE(m.get_u64(Tag::UptimeSeconds) == 5u);
}

TEST_CASE("the documented UNWRAP request has the documented header and fields", "[protocol][docs]") {
    // The 80-byte KCW1 blob of docs/envelope.md (context "db:users").
    const auto wrapped = hex_bytes(
        "4b435731 c2556e1bed6290afe38f296b36cceaf6 c0c1c2c3c4c5c6c7c8c9cacb"
        " a0e985c4d3dd30f9307057099e0146f9fcc2518c8857a90d927af1b18bc0c109"
        " 45774132050087bc28629873fbe4c1e4");
    REQUIRE(wrapped.size() == 80);
    const auto built = plain(MessageBuilder(static_cast<uint8_t>(Opcode::Unwrap), 0x2a)
                                 .bytes(Tag::Wrapped, wrapped)
                                 .str(Tag::Context, "db:users")
                                 .finish());
    auto doc = hex_bytes("00 00 00 6a  01 08 00 00 00 2a\n"
                         "00 07 00 00 00 50");
    doc.insert(doc.end(), wrapped.begin(), wrapped.end());
    const auto context = hex_bytes("00 05 00 00 00 08  64 62 3a 75 73 65 72 73");
    doc.insert(doc.end(), context.begin(), context.end());
    REQUIRE(built == doc);
    REQUIRE(built.size() == 4 + 0x6a);
}

TEST_CASE("the documented KEY_NOT_PRESENT error reply has the documented layout", "[protocol][docs]") {
    const std::string message = "key 3f2a\xe2\x80\xa6 is not present";
    const auto built = plain(MessageBuilder(static_cast<uint8_t>(Opcode::Error), 0x2a)
                                 .u8(Tag::ErrorCode, 2)
                                 .str(Tag::Message, message)
                                 .finish());
    REQUIRE(message.size() == 26);  // the doc's "nn"; the frame length "xx" is 6 + 7 + 6 + 26
    auto expected = hex_bytes("00 00 00 2d  01 ff 00 00 00 2a\n"
                              "00 0d 00 00 00 01  02\n"
                              "00 0e 00 00 00 1a");
    expected.insert(expected.end(), message.begin(), message.end());
    REQUIRE(built == expected);
}
