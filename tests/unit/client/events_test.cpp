// SUBSCRIBE: events queued while other calls run, timeouts, and the end of a subscription.
#include <catch2/catch.hpp>

#include <string>

#include "fake_daemon.h"

using namespace keychain::test;
using keychaind::wire::MessageBuilder;
using keychaind::wire::Tag;

namespace {

keychaind::WipingBuffer event(uint32_t subscription, uint8_t type, const std::string& label, const char* reason) {
    auto info = MessageBuilder::fields_only();
    info.bytes(Tag::KeyId, std::vector<uint8_t>(16, 0x44)).str(Tag::Label, label).u8(Tag::Present, type == 1);
    MessageBuilder b(0xFE, subscription);
    b.u8(Tag::EventType, type).nested(Tag::KeyInfo, info);
    if (reason != nullptr) b.str(Tag::Reason, reason);
    return std::move(b).finish();
}

}  // namespace

TEST_CASE("events arrive after SUBSCRIBE, also while other calls are answered") {
    FakeDaemon d({[](FakeConnection& conn) {
        auto sub = conn.read();
        // The reply and the first event in one write: the event must not be lost.
        auto reply = reply_to(sub.msg).finish();
        auto first = event(sub.msg.request_id, 1, "db", nullptr);
        reply.insert(reply.end(), first.begin(), first.end());
        conn.send(reply);
        auto status = conn.read();
        conn.send(event(sub.msg.request_id, 2, "db", "forget"));
        conn.send(reply_to(status.msg).u32(Tag::Count, 0).finish());
        conn.send(event(sub.msg.request_id, 1, "web", nullptr));
        conn.expect_eof();
    }});
    auto c = connect_to(d);
    REQUIRE(kc_subscribe(c.get()) == KC_OK);
    kc_status_info s{};
    REQUIRE(kc_status(c.get(), &s) == KC_OK);

    kc_event ev{};
    REQUIRE(kc_next_event(c.get(), 0, &ev) == KC_OK);
    CHECK(ev.type == KC_EVENT_ADDED);
    CHECK(std::string(ev.key.label) == "db");
    CHECK(std::string(ev.key.id) == std::string(32, '4'));
    CHECK(std::string(ev.reason).empty());
    kc_event_clear(&ev);
    REQUIRE(kc_next_event(c.get(), 0, &ev) == KC_OK);
    CHECK(ev.type == KC_EVENT_REMOVED);
    CHECK(std::string(ev.reason) == "forget");
    kc_event_clear(&ev);
    REQUIRE(kc_next_event(c.get(), 5000, &ev) == KC_OK);
    CHECK(std::string(ev.key.label) == "web");
    kc_event_clear(&ev);
    CHECK(kc_next_event(c.get(), 30, &ev) == KC_ERR_TIMEOUT);
    c.reset();
    d.stop();
    CHECK(d.errors().empty());
}

TEST_CASE("a closed connection ends the subscription") {
    FakeDaemon d({[](FakeConnection& conn) {
        auto sub = conn.read();
        conn.send(reply_to(sub.msg).finish());
        conn.send(event(sub.msg.request_id, 1, "db", nullptr));
    }});
    auto c = connect_to(d);
    REQUIRE(kc_subscribe(c.get()) == KC_OK);
    kc_event ev{};
    REQUIRE(kc_next_event(c.get(), 5000, &ev) == KC_OK);
    kc_event_clear(&ev);
    CHECK(kc_next_event(c.get(), 5000, &ev) == KC_ERR_IO);
    CHECK(std::string(kc_last_error(c.get())).find("subscribe again") != std::string::npos);
    CHECK(kc_next_event(c.get(), 0, &ev) == KC_ERR_IO);
    d.stop();
    CHECK(d.errors().empty());
}

TEST_CASE("kc_next_event without a subscription is an argument error") {
    FakeDaemon d({[](FakeConnection& conn) { conn.expect_eof(); }});
    auto c = connect_to(d);
    kc_event ev{};
    CHECK(kc_next_event(c.get(), 0, &ev) == KC_ERR_ARGUMENT);
    c.reset();
    d.stop();
    CHECK(d.errors().empty());
}
