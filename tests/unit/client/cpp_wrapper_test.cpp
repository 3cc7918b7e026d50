// keychain::Client and keychain::Batch: RAII over the C ABI, errors as exceptions.
#include <catch2/catch.hpp>

#include "fake_daemon.h"
#include "keychain/client.hpp"

using namespace keychain::test;
using keychaind::wire::MessageBuilder;
using keychaind::wire::Tag;

TEST_CASE("keychain::Client throws keychain::Error carrying the daemon's code and message") {
    FakeDaemon d({[](FakeConnection& conn) {
        auto r = conn.read();
        conn.send(error_to(r.msg, 1, "no key labelled nope"));
    }});
    keychain::Client client(d.socket_path());
    try {
        client.sign("nope", KC_SIGN_ECDSA_SHA256, std::vector<uint8_t>(32, 1));
        FAIL("no exception");
    } catch (const keychain::Error& e) {
        CHECK(e.code() == KC_ERR_NO_SUCH_KEY);
        CHECK(std::string(e.name()) == "NO_SUCH_KEY");
        CHECK(e.message() == "no key labelled nope");
    }
    d.stop();
    CHECK(d.errors().empty());
}

TEST_CASE("keychain::Client cannot be built for a missing socket") {
    CHECK_THROWS_AS(keychain::Client("/nonexistent/keychaind.sock"), keychain::Error);
}

TEST_CASE("keychain::Client returns key lists and secrets as C++ values") {
    FakeDaemon d({[](FakeConnection& conn) {
        auto l = conn.read();
        auto info = MessageBuilder::fields_only();
        info.bytes(Tag::KeyId, std::vector<uint8_t>(16, 0x55))
            .str(Tag::Label, "db")
            .str(Tag::Source, "identity:web")
            .str(Tag::Source, "provided:uid=0")
            .u8(Tag::Present, 1);
        conn.send(reply_to(l.msg).nested(Tag::KeyInfo, info).finish());
        auto g = conn.read();
        conn.send(reply_to(g.msg)
                      .bytes(Tag::KeyId, std::vector<uint8_t>(16, 1))
                      .bytes(Tag::DataKey, std::vector<uint8_t>(32, 3))
                      .bytes(Tag::Wrapped, bytes_of("wrapped"))
                      .finish());
    }});
    keychain::Client client(d.socket_path());
    const auto keys = client.list_keys();
    REQUIRE(keys.size() == 1);
    CHECK(keys[0].label == "db");
    CHECK(keys[0].sources == std::vector<std::string>{"identity:web", "provided:uid=0"});
    CHECK(!keys[0].expires);
    const auto dk = client.generate_data_key("db", "context");
    CHECK(dk.key.size() == 32);
    CHECK(dk.key.data()[0] == 3);
    CHECK(dk.wrapped == bytes_of("wrapped"));
    d.stop();
    CHECK(d.errors().empty());
}

TEST_CASE("keychain::Batch gives each item's result or throws its error") {
    FakeDaemon d({[](FakeConnection& conn) {
        auto a = conn.read();
        auto b = conn.read();
        conn.send(error_to(b.msg, 4, "wrapped key does not authenticate"));
        conn.send(reply_to(a.msg).bytes(Tag::Signature, bytes_of("sig")).finish());
    }});
    keychain::Client client(d.socket_path());
    keychain::Batch batch;
    const auto i = batch.add_sign("web", KC_SIGN_ECDSA_SHA256, std::vector<uint8_t>(32, 1));
    const auto j = batch.add_unwrap(std::string("KCW1 junk"));
    batch.run(client);
    CHECK(batch.code(i) == KC_OK);
    const auto sig = batch.result(i);
    CHECK(std::string(sig.data(), sig.data() + sig.size()) == "sig");
    CHECK(batch.code(j) == KC_ERR_BAD_REQUEST);
    CHECK_THROWS_AS(batch.result(j), keychain::Error);
    CHECK(batch.message(j) == "wrapped key does not authenticate");
    d.stop();
    CHECK(d.errors().empty());
}
