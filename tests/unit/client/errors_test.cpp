// Error replies, connection-level errors, oversized frames, timeouts and connect failures.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "fake_daemon.h"

using namespace keychain::test;
using keychaind::wire::MessageBuilder;
using keychaind::wire::Tag;

namespace {
const std::vector<uint8_t> kWrapped = bytes_of("KCW1 and then some bytes");

bool contains(const char* haystack, const std::string& needle) {
    return std::string(haystack).find(needle) != std::string::npos;
}
}  // namespace

TEST_CASE("an error reply maps to its code and message, and the connection stays usable") {
    FakeDaemon d({[&](FakeConnection& conn) {
        auto r = conn.read();
        conn.send(error_to(r.msg, 2, "key 3f2a... is not present"));
        auto r2 = conn.read();
        conn.send(reply_to(r2.msg).bytes(Tag::KeyId, std::vector<uint8_t>(16, 1)).bytes(Tag::DataKey, bytes_of("k")).finish());
    }});
    auto c = connect_to(d);
    kc_buffer key{};
    CHECK(kc_unwrap(c.get(), kWrapped.data(), kWrapped.size(), nullptr, 0, &key) == KC_ERR_KEY_NOT_PRESENT);
    CHECK(std::string(kc_last_error(c.get())) == "key 3f2a... is not present");
    CHECK(key.data == nullptr);
    CHECK(kc_unwrap(c.get(), kWrapped.data(), kWrapped.size(), nullptr, 0, &key) == KC_OK);
    CHECK(std::string(kc_last_error(c.get())).empty());
    kc_buffer_free(&key);
    d.stop();
    CHECK(d.errors().empty());
    CHECK(d.accepted() == 1);
}

TEST_CASE("every code has a name and a text") {
    CHECK(std::string(kc_code_name(KC_ERR_NO_SUCH_KEY)) == "NO_SUCH_KEY");
    CHECK(std::string(kc_code_name(KC_ERR_INTERNAL)) == "INTERNAL");
    CHECK(std::string(kc_code_name(KC_ERR_CONNECT)) == "CONNECT");
    CHECK(std::string(kc_code_name(42)) == "UNKNOWN");
    for (int code : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100, 101, 102, 103, 104})
        CHECK(std::string(kc_strerror(code)) != "unknown error");
    CHECK(std::string(kc_strerror(55)) == "unknown error");
}

TEST_CASE("a socket that does not exist gives KC_ERR_CONNECT and names the path") {
    kc_client* c = reinterpret_cast<kc_client*>(1);
    CHECK(kc_connect("/nonexistent/keychaind.sock", &c) == KC_ERR_CONNECT);
    CHECK(c == nullptr);
    CHECK(contains(kc_last_error(nullptr), "/nonexistent/keychaind.sock"));
}

TEST_CASE("KEYCHAIND_SOCKET is the socket when none is given") {
    FakeDaemon d({[](FakeConnection& conn) { conn.expect_eof(); }});
    ::setenv("KEYCHAIND_SOCKET", d.socket_path().c_str(), 1);
    kc_client* c = nullptr;
    CHECK(kc_connect(nullptr, &c) == KC_OK);
    ::unsetenv("KEYCHAIND_SOCKET");
    kc_close(c);
    d.stop();
    CHECK(d.errors().empty());
    CHECK(d.accepted() == 1);
}

TEST_CASE("a reply frame over 1 MiB is refused without reading it") {
    FakeDaemon d({[](FakeConnection& conn) {
        conn.read();
        std::vector<uint8_t> header(4 + 6);
        keychaind::wire::put_be32(header.data(), 1024 * 1024 + 1);
        conn.send_raw(header);
        conn.expect_eof();  // the client gives up on the connection
    }});
    auto c = connect_to(d);
    kc_status_info s{};
    CHECK(kc_status(c.get(), &s) == KC_ERR_PROTOCOL);
    CHECK(contains(kc_last_error(c.get()), "exceeds"));
    d.stop();
    CHECK(d.errors().empty());
}

TEST_CASE("a reply frame of exactly 1 MiB is accepted") {
    FakeDaemon d({[](FakeConnection& conn) {
        auto r = conn.read();
        const size_t payload = 1024 * 1024 - 6 - 6;
        conn.send(reply_to(r.msg).bytes(Tag::Signature, std::vector<uint8_t>(payload, 0x77)).finish());
    }});
    auto c = connect_to(d);
    const std::vector<uint8_t> digest(32, 1);
    kc_buffer sig{};
    REQUIRE(kc_sign(c.get(), "web", KC_SIGN_RSA_PSS_SHA256, digest.data(), digest.size(), &sig) == KC_OK);
    CHECK(sig.len == 1024 * 1024 - 12);
    kc_buffer_free(&sig);
    d.stop();
    CHECK(d.errors().empty());
}

TEST_CASE("a reply with an opcode that does not answer the request is a protocol error") {
    FakeDaemon d({[](FakeConnection& conn) {
        auto r = conn.read();
        conn.send(MessageBuilder(0x84, r.msg.request_id).bytes(Tag::Signature, bytes_of("x")).finish());
    }});
    auto c = connect_to(d);
    kc_status_info s{};
    CHECK(kc_status(c.get(), &s) == KC_ERR_PROTOCOL);
    CHECK(contains(kc_last_error(c.get()), "STATUS"));
    d.stop();
    CHECK(d.errors().empty());
}

TEST_CASE("a reply missing its result field is a protocol error") {
    FakeDaemon d({[](FakeConnection& conn) {
        auto r = conn.read();
        conn.send(reply_to(r.msg).finish());
    }});
    auto c = connect_to(d);
    kc_buffer key{};
    CHECK(kc_unwrap(c.get(), kWrapped.data(), kWrapped.size(), nullptr, 0, &key) == KC_ERR_PROTOCOL);
    CHECK(contains(kc_last_error(c.get()), "DATA_KEY"));
    d.stop();
    CHECK(d.errors().empty());
}

TEST_CASE("a connection-level error (request id 0) is reported and not retried") {
    bool second_connection = false;
    FakeDaemon d({[](FakeConnection& conn) {
                      conn.read();
                      conn.send(MessageBuilder(0xFF, 0)
                                    .u8(Tag::ErrorCode, 8)
                                    .str(Tag::Message, "too many connections for uid 1000")
                                    .finish());
                  },
                  [&](FakeConnection&) { second_connection = true; }});
    auto c = connect_to(d);
    kc_status_info s{};
    CHECK(kc_status(c.get(), &s) == KC_ERR_BUSY);
    CHECK(std::string(kc_last_error(c.get())) == "too many connections for uid 1000");
    d.stop();
    CHECK(d.errors().empty());
    CHECK(!second_connection);
}

TEST_CASE("a daemon that does not answer in time gives KC_ERR_IO, and the next call connects again") {
    FakeDaemon d({[](FakeConnection& conn) {
                      conn.read();
                      conn.expect_eof();
                  },
                  [](FakeConnection& conn) {
                      auto r = conn.read();
                      conn.send(reply_to(r.msg).u32(Tag::Count, 0).finish());
                  }});
    auto c = connect_to(d);
    kc_set_timeout(c.get(), 200);
    kc_status_info s{};
    CHECK(kc_status(c.get(), &s) == KC_ERR_IO);
    CHECK(contains(kc_last_error(c.get()), "200 ms"));
    uint32_t added = 99;
    CHECK(kc_discover(c.get(), &added) == KC_OK);
    CHECK(added == 0);
    d.stop();
    CHECK(d.errors().empty());
    CHECK(d.accepted() == 2);
}
