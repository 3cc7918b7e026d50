// Pipelined batches matched by request id, and the one reconnect for idempotent requests.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>

#include "fake_daemon.h"

using namespace keychain::test;
using keychaind::wire::Opcode;
using keychaind::wire::Tag;

namespace {

std::vector<uint8_t> digest_for(size_t i) {
    std::vector<uint8_t> d(32, 0);
    d[0] = static_cast<uint8_t>(i);
    d[1] = static_cast<uint8_t>(i >> 8);
    return d;
}

// The fake signature of a digest: the digest with a prefix, so a mismatch is visible.
keychaind::WipingBuffer sign_reply(const ReceivedRequest& r) {
    std::vector<uint8_t> sig = bytes_of("sig:");
    const auto data = *r.msg.get(Tag::Data);
    sig.insert(sig.end(), data.begin(), data.end());
    return reply_to(r.msg).bytes(Tag::Signature, sig).finish();
}

std::vector<uint8_t> expected_signature(size_t i) {
    std::vector<uint8_t> sig = bytes_of("sig:");
    const auto d = digest_for(i);
    sig.insert(sig.end(), d.begin(), d.end());
    return sig;
}

const std::vector<uint8_t> kDigest(32, 0x10);

}  // namespace

TEST_CASE("batch replies that come back out of order are matched by request id") {
    constexpr size_t kItems = 10;
    std::set<uint32_t> ids;
    FakeDaemon d({[&](FakeConnection& conn) {
        // Every request arrives before any reply is sent: the client does not wait in between.
        std::vector<ReceivedRequest> reqs;
        for (size_t i = 0; i < kItems; ++i) reqs.push_back(conn.read());
        for (auto it = reqs.rbegin(); it != reqs.rend(); ++it) {
            ids.insert(it->msg.request_id);
            if ((*it->msg.get(Tag::Data))[0] == 3)
                conn.send(error_to(it->msg, 5, "ECDSA with an RSA key"));
            else
                conn.send(sign_reply(*it));
        }
    }});
    auto c = connect_to(d);
    kc_batch* b = kc_batch_new();
    REQUIRE(b != nullptr);
    for (size_t i = 0; i < kItems; ++i) {
        size_t index = 99;
        const auto dg = digest_for(i);
        REQUIRE(kc_batch_add_sign(b, "web", KC_SIGN_ECDSA_SHA256, dg.data(), dg.size(), &index) == KC_OK);
        CHECK(index == i);
    }
    CHECK(kc_batch_result(b, 0, nullptr) == KC_ERR_ARGUMENT);  // not run yet
    REQUIRE(kc_batch_run(c.get(), b) == KC_OK);
    d.stop();
    REQUIRE(d.errors().empty());
    CHECK(ids.size() == kItems);
    CHECK(ids.count(0) == 0);
    for (size_t i = 0; i < kItems; ++i) {
        kc_buffer out{};
        if (i == 3) {
            CHECK(kc_batch_result(b, i, &out) == KC_ERR_UNSUPPORTED);
            CHECK(std::string(kc_batch_message(b, i)) == "ECDSA with an RSA key");
            CHECK(out.data == nullptr);
            continue;
        }
        REQUIRE(kc_batch_result(b, i, &out) == KC_OK);
        CHECK(vec(out) == expected_signature(i));
        kc_buffer_free(&out);
    }
    CHECK(kc_batch_result(b, kItems, nullptr) == KC_ERR_ARGUMENT);
    kc_batch_free(b);
}

TEST_CASE("a batch larger than the in-flight window completes") {
    constexpr size_t kItems = 300;
    size_t most_unanswered = 0;
    FakeDaemon d({[&](FakeConnection& conn) {
        std::vector<ReceivedRequest> pending;
        for (size_t seen = 0; seen < kItems;) {
            pending.push_back(conn.read());
            ++seen;
            most_unanswered = std::max(most_unanswered, pending.size());
            if (pending.size() == 16 || seen == kItems) {
                for (auto it = pending.rbegin(); it != pending.rend(); ++it) conn.send(sign_reply(*it));
                pending.clear();
            }
        }
    }});
    auto c = connect_to(d);
    kc_batch* b = kc_batch_new();
    for (size_t i = 0; i < kItems; ++i) {
        const auto dg = digest_for(i);
        REQUIRE(kc_batch_add_sign(b, "web", KC_SIGN_ECDSA_SHA256, dg.data(), dg.size(), nullptr) == KC_OK);
    }
    REQUIRE(kc_batch_size(b) == kItems);
    REQUIRE(kc_batch_run(c.get(), b) == KC_OK);
    d.stop();
    REQUIRE(d.errors().empty());
    for (size_t i = 0; i < kItems; ++i) {
        kc_buffer out{};
        REQUIRE(kc_batch_result(b, i, &out) == KC_OK);
        CHECK(vec(out) == expected_signature(i));
        kc_buffer_free(&out);
    }
    kc_batch_free(b);
}

TEST_CASE("a batch mixes unwrap and generate items") {
    FakeDaemon d({[&](FakeConnection& conn) {
        auto a = conn.read();
        auto g = conn.read();
        conn.send(reply_to(g.msg)
                      .bytes(Tag::KeyId, std::vector<uint8_t>(16, 1))
                      .bytes(Tag::DataKey, std::vector<uint8_t>(32, 2))
                      .bytes(Tag::Wrapped, bytes_of("fresh"))
                      .finish());
        conn.send(reply_to(a.msg).bytes(Tag::KeyId, std::vector<uint8_t>(16, 1)).bytes(Tag::DataKey, bytes_of("old")).finish());
    }});
    auto c = connect_to(d);
    kc_batch* b = kc_batch_new();
    const auto wrapped = bytes_of("KCW1...");
    REQUIRE(kc_batch_add_unwrap(b, wrapped.data(), wrapped.size(), nullptr, 0, nullptr) == KC_OK);
    REQUIRE(kc_batch_add_generate_data_key(b, "db", nullptr, 0, nullptr) == KC_OK);
    REQUIRE(kc_batch_run(c.get(), b) == KC_OK);
    d.stop();
    REQUIRE(d.errors().empty());
    kc_buffer out{};
    REQUIRE(kc_batch_result(b, 0, &out) == KC_OK);
    CHECK(text_of({out.data, out.len}) == "old");
    kc_buffer_free(&out);
    CHECK(kc_batch_result_wrapped(b, 0, &out) == KC_ERR_ARGUMENT);
    REQUIRE(kc_batch_result(b, 1, &out) == KC_OK);
    CHECK(vec(out) == std::vector<uint8_t>(32, 2));
    kc_buffer_free(&out);
    REQUIRE(kc_batch_result_wrapped(b, 1, &out) == KC_OK);
    CHECK(text_of({out.data, out.len}) == "fresh");
    kc_buffer_free(&out);
    kc_batch_free(b);
}

TEST_CASE("an idempotent request is sent again once when the daemon closed the connection unanswered") {
    FakeDaemon d({[](FakeConnection& conn) { conn.read(); },  // reads the request, closes without replying
                  [](FakeConnection& conn) {
                      auto r = conn.read();
                      conn.send(sign_reply(r));
                  }});
    auto c = connect_to(d);
    kc_buffer sig{};
    REQUIRE(kc_sign(c.get(), "web", KC_SIGN_ECDSA_SHA256, kDigest.data(), kDigest.size(), &sig) == KC_OK);
    kc_buffer_free(&sig);
    d.stop();
    CHECK(d.errors().empty());
    CHECK(d.accepted() == 2);
}

TEST_CASE("a connection the daemon closed while idle is replaced before sending") {
    FakeDaemon d({[](FakeConnection& conn) { conn.close(); },
                  [](FakeConnection& conn) {
                      auto r = conn.read();
                      conn.send(reply_to(r.msg).bytes(Tag::KeyId, std::vector<uint8_t>(16, 1)).finish());
                  }});
    auto c = connect_to(d);
    REQUIRE(d.wait_finished(1));  // the first connection is closed now
    // PROVIDE is not idempotent, but the closed socket is found before it was ever delivered.
    char id[65];
    CHECK(kc_provide_passphrase(c.get(), "secret words", nullptr, 0, id) == KC_OK);
    d.stop();
    CHECK(d.errors().empty());
    CHECK(d.accepted() == 2);
}

TEST_CASE("a request that is not idempotent is not sent again once it was delivered") {
    bool second_connection = false;
    FakeDaemon d({[](FakeConnection& conn) { conn.read(); }, [&](FakeConnection&) { second_connection = true; }});
    auto c = connect_to(d);
    kc_buffer key{}, wrapped{};
    CHECK(kc_generate_data_key(c.get(), "db", nullptr, 0, &key, &wrapped) == KC_ERR_IO);
    CHECK(std::string(kc_last_error(c.get())).find("may have been carried out") != std::string::npos);
    CHECK(key.data == nullptr);
    d.stop();
    CHECK(d.errors().empty());
    CHECK(!second_connection);
}

TEST_CASE("the reconnect happens once: a second close is an error") {
    bool third_connection = false;
    FakeDaemon d({[](FakeConnection& conn) { conn.read(); }, [](FakeConnection& conn) { conn.read(); },
                  [&](FakeConnection&) { third_connection = true; }});
    auto c = connect_to(d);
    kc_status_info s{};
    CHECK(kc_status(c.get(), &s) == KC_ERR_IO);
    CHECK(std::string(kc_last_error(c.get())).find("also after reconnecting") != std::string::npos);
    d.stop();
    CHECK(d.errors().empty());
    CHECK(!third_connection);
}

TEST_CASE("a dropped batch resends its unanswered idempotent items only") {
    std::vector<uint8_t> resent;
    FakeDaemon d({[](FakeConnection& conn) {
                      auto s = conn.read();
                      conn.read();  // GENERATE_DATA_KEY: delivered, never answered
                      conn.read();  // UNWRAP: delivered, never answered
                      conn.send(sign_reply(s));
                  },
                  [&](FakeConnection& conn) {
                      auto r = conn.read();
                      resent.push_back(r.msg.opcode);
                      conn.send(reply_to(r.msg).bytes(Tag::KeyId, std::vector<uint8_t>(16, 1)).bytes(Tag::DataKey, bytes_of("dk")).finish());
                  }});
    auto c = connect_to(d);
    kc_batch* b = kc_batch_new();
    const auto wrapped = bytes_of("KCW1...");
    REQUIRE(kc_batch_add_sign(b, "web", KC_SIGN_ECDSA_SHA256, kDigest.data(), kDigest.size(), nullptr) == KC_OK);
    REQUIRE(kc_batch_add_generate_data_key(b, "db", nullptr, 0, nullptr) == KC_OK);
    REQUIRE(kc_batch_add_unwrap(b, wrapped.data(), wrapped.size(), nullptr, 0, nullptr) == KC_OK);
    CHECK(kc_batch_run(c.get(), b) == KC_ERR_IO);  // one item got no answer
    d.stop();
    CHECK(d.errors().empty());
    CHECK(resent == std::vector<uint8_t>{static_cast<uint8_t>(Opcode::Unwrap)});
    CHECK(kc_batch_result(b, 0, nullptr) == KC_OK);
    CHECK(kc_batch_result(b, 1, nullptr) == KC_ERR_IO);
    kc_buffer out{};
    REQUIRE(kc_batch_result(b, 2, &out) == KC_OK);
    CHECK(text_of({out.data, out.len}) == "dk");
    kc_buffer_free(&out);
    kc_batch_free(b);
}
