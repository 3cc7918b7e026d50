// Keychain: merging origins, lookups, forgetting, detaching sources, expiry and events.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/keychain.h"
#include "test_bytes.h"

using namespace keychaind;
using keychaind::core_test::all_zero;
using keychaind::core_test::counting_bytes;
using Clock = std::chrono::system_clock;

namespace {

std::shared_ptr<const Key> aes_key(uint8_t first_byte, std::string label,
                                   std::optional<SystemTime> expires = std::nullopt) {
    const auto material = counting_bytes(first_byte, Key::kAesKeySize);
    return Key::aes(SecretBytes(std::span<const uint8_t>(material)), std::move(label), expires);
}

const KeyOrigin kStick{"device", "usb-1234/abcd-ef/keys.4DKeyChain#0", true};
const KeyOrigin kOtherStick{"device", "usb-9999/0000-11/keys.4DKeyChain#0", true};
const KeyOrigin kConfigFile{"file", "/etc/keychaind/keys/db.4DKeyChain#0", false};

ErrorCode error_of(const Keychain& kc, const KeySelector& sel) {
    try {
        (void)kc.get(sel);
    } catch (const KeychainError& e) {
        return e.code();
    }
    return ErrorCode::Ok;
}

struct EventLog {
    std::vector<KeyEvent> events;
    void attach(Keychain& kc) {
        kc.set_listener([this](const KeyEvent& e) { events.push_back(e); });
    }
};

}  // namespace

TEST_CASE("the same key from two origins is one entry with two sources", "[core][keychain]") {
    Keychain kc;
    EventLog log;
    log.attach(kc);
    auto key = aes_key(0x00, "db");
    REQUIRE(kc.add(key, kStick) == Keychain::AddOutcome::Added);
    // Another object with the same material, as a second source would produce it.
    REQUIRE(kc.add(aes_key(0x00, "db from config"), kConfigFile) == Keychain::AddOutcome::OriginAdded);
    REQUIRE(kc.add(aes_key(0x00, "db"), kStick) == Keychain::AddOutcome::Unchanged);
    REQUIRE(kc.size() == 1);

    const auto listed = kc.list(false);
    REQUIRE(listed.size() == 1);
    REQUIRE(listed[0].id == key->id());
    REQUIRE(listed[0].label == "db");  // the first origin's key object stays
    REQUIRE(listed[0].sources ==
            std::vector<std::string>{kStick.text(), kConfigFile.text()});
    REQUIRE(listed[0].kind == KeyKind::Aes256);
    REQUIRE(listed[0].bits == 256);
    REQUIRE(listed[0].usages == kUsageWrap);
    REQUIRE_FALSE(listed[0].tethered);  // the config file keeps it
    REQUIRE(listed[0].present);

    REQUIRE(log.events.size() == 1);  // merges are not events
    REQUIRE(log.events[0].type == KeyEventType::Added);
    REQUIRE(log.events[0].info.id == key->id());
}

TEST_CASE("a key is found by id and by label", "[core][keychain]") {
    Keychain kc;
    auto db = aes_key(0x00, "db");
    auto logs = aes_key(0x40, "logs");
    kc.add(db, kStick);
    kc.add(logs, kStick);
    REQUIRE(kc.get(db->id()) == db);
    REQUIRE(kc.get(KeySelector{std::nullopt, "logs"}) == logs);
    REQUIRE(kc.get(KeySelector{logs->id(), "db"}) == logs);  // an id wins over a label
    const auto info = kc.info(KeySelector{std::nullopt, "db"});
    REQUIRE(info);
    REQUIRE(info->id == db->id());
    REQUIRE(info->tethered);
}

TEST_CASE("a label that names several keys is a bad request", "[core][keychain]") {
    Keychain kc;
    kc.add(aes_key(0x00, "shared"), kStick);
    kc.add(aes_key(0x40, "shared"), kStick);
    try {
        (void)kc.get(KeySelector{std::nullopt, "shared"});
        FAIL("an ambiguous label selected a key");
    } catch (const KeychainError& e) {
        REQUIRE(e.code() == ErrorCode::BadRequest);
        REQUIRE(std::string(e.what()) == "label \"shared\" names 2 keys; select by id");
    }
    REQUIRE_FALSE(kc.info(KeySelector{std::nullopt, "shared"}));
}

TEST_CASE("a forgotten key is KEY_NOT_PRESENT while a never-seen key is NO_SUCH_KEY",
          "[core][keychain]") {
    Keychain kc;
    EventLog log;
    log.attach(kc);
    auto key = aes_key(0x00, "db");
    const KeyId id = key->id();
    kc.add(key, kStick);
    const KeySelector by_id{id, {}};
    REQUIRE(kc.forget(&by_id) == 1);
    REQUIRE(kc.size() == 0);

    REQUIRE(error_of(kc, by_id) == ErrorCode::KeyNotPresent);
    REQUIRE(error_of(kc, KeySelector{std::nullopt, "db"}) == ErrorCode::KeyNotPresent);
    REQUIRE(error_of(kc, KeySelector{KeyId::for_symmetric_key(counting_bytes(0x77, 32)), {}}) ==
            ErrorCode::NoSuchKey);
    REQUIRE(error_of(kc, KeySelector{std::nullopt, "never"}) == ErrorCode::NoSuchKey);
    REQUIRE(kc.forget(&by_id) == 0);

    const auto absent = kc.list(true);
    REQUIRE(absent.size() == 1);
    REQUIRE_FALSE(absent[0].present);
    REQUIRE(absent[0].sources.empty());
    REQUIRE(kc.list(false).empty());

    REQUIRE(log.events.size() == 2);
    REQUIRE(log.events[1].type == KeyEventType::Removed);
    REQUIRE(log.events[1].reason == "forget");
    REQUIRE_FALSE(log.events[1].info.present);

    // It comes back when a source offers it again.
    REQUIRE(kc.add(aes_key(0x00, "db"), kConfigFile) == Keychain::AddOutcome::Added);
    REQUIRE(kc.get(id)->id() == id);
    REQUIRE(kc.list(true).size() == 1);
}

TEST_CASE("forget by label drops every key with it, forget of all empties the keychain",
          "[core][keychain]") {
    Keychain kc;
    kc.add(aes_key(0x00, "a"), kStick);
    kc.add(aes_key(0x20, "a"), kStick);
    kc.add(aes_key(0x40, "b"), kStick);
    const KeySelector a{std::nullopt, "a"};
    REQUIRE(kc.forget(&a, "admin") == 2);
    REQUIRE(kc.size() == 1);
    REQUIRE(kc.forget(nullptr) == 1);
    REQUIRE(kc.size() == 0);
    REQUIRE(kc.list(true).size() == 3);
}

TEST_CASE("a key forgotten from the keychain has its AES material wiped", "[core][keychain]") {
    Keychain kc;
    const uint8_t* material = nullptr;
    KeyId id;
    {
        auto key = aes_key(0x10, "wipe me");
        material = key->aes_material().data();
        id = key->id();
        REQUIRE(key->aes_material().size() == 32);
        REQUIRE(material[0] == 0x10);
        REQUIRE(material[31] == 0x2f);
        kc.add(std::move(key), kStick);
    }
    REQUIRE_FALSE(all_zero(material, 32));  // the keychain still holds it
    {
        auto held = kc.get(id);  // an operation in flight keeps the material alive
        const KeySelector sel{id, {}};
        kc.forget(&sel);
        REQUIRE(held->aes_material().data()[0] == 0x10);
    }
    // Small arena blocks stay mapped, so the released block can be read.
    REQUIRE(all_zero(material, 32));
}

TEST_CASE("detaching a source drops keys only it kept and keeps retained ones", "[core][keychain]") {
    Keychain kc;
    EventLog log;
    log.attach(kc);
    auto tethered = aes_key(0x00, "tethered");
    auto retained = aes_key(0x40, "retained");
    auto two_sticks = aes_key(0x80, "two sticks");
    kc.add(tethered, kStick);
    kc.add(retained, kStick);
    kc.add(retained, kConfigFile);
    kc.add(two_sticks, kStick);
    kc.add(two_sticks, kOtherStick);
    log.events.clear();

    const size_t dropped = kc.detach_origins([](const KeyOrigin& o) { return o == kStick; });
    REQUIRE(dropped == 1);
    REQUIRE(kc.size() == 2);
    REQUIRE(error_of(kc, KeySelector{tethered->id(), {}}) == ErrorCode::KeyNotPresent);
    REQUIRE(kc.get(retained->id()) == retained);
    REQUIRE(kc.info(KeySelector{retained->id(), {}})->sources ==
            std::vector<std::string>{kConfigFile.text()});
    REQUIRE(kc.get(two_sticks->id()) == two_sticks);

    REQUIRE(log.events.size() == 1);
    REQUIRE(log.events[0].type == KeyEventType::Removed);
    REQUIRE(log.events[0].info.id == tethered->id());
    REQUIRE(log.events[0].reason == "source removed");

    REQUIRE(kc.detach_origins([](const KeyOrigin& o) { return o == kOtherStick; }) == 1);
    REQUIRE(error_of(kc, KeySelector{two_sticks->id(), {}}) == ErrorCode::KeyNotPresent);

    // A retained key outlives all its origins.
    REQUIRE(kc.detach_origins([](const KeyOrigin&) { return true; }) == 0);
    REQUIRE(kc.get(retained->id()) == retained);
    REQUIRE(kc.info(KeySelector{retained->id(), {}})->sources.empty());
}

TEST_CASE("a key detached with a reason answers that reason's code and keeps its sources while absent",
          "[core][keychain]") {
    Keychain kc;
    EventLog log;
    log.attach(kc);
    const KeyOrigin token{"token", "pkcs11:token=web;serial=42;object=kek;id=%01;type=secret-key", true};
    auto key = aes_key(0x00, "kek");
    auto other = aes_key(0x40, "other");
    kc.add(key, token);
    kc.add(other, kStick);
    log.events.clear();

    const AbsentReason why{ErrorCode::TokenError, "token \"web\" was removed"};
    REQUIRE(kc.detach_origins([&](const KeyOrigin& o) { return o == token; }, why) == 1);
    REQUIRE(kc.size() == 1);

    for (const KeySelector& sel : {KeySelector{key->id(), {}}, KeySelector{std::nullopt, "kek"}}) {
        try {
            (void)kc.get(sel);
            FAIL("get() of a detached token key must throw");
        } catch (const KeychainError& e) {
            REQUIRE(e.code() == ErrorCode::TokenError);
            REQUIRE(std::string(e.what()) == "key " + sel.text() + ": token \"web\" was removed");
        }
    }
    REQUIRE_FALSE(kc.info(KeySelector{key->id(), {}}).has_value());  // WAIT keeps waiting

    const auto listed = kc.list(true);
    REQUIRE(listed.size() == 2);
    const auto absent = std::find_if(listed.begin(), listed.end(), [](const KeyInfo& i) { return !i.present; });
    REQUIRE(absent != listed.end());
    REQUIRE(absent->id == key->id());
    REQUIRE(absent->sources == std::vector<std::string>{token.text()});
    REQUIRE(log.events.size() == 1);
    REQUIRE(log.events[0].reason == "source removed");

    // Back with its token: present again, and no trace of the reason.
    REQUIRE(kc.add(aes_key(0x00, "kek"), token) == Keychain::AddOutcome::Added);
    REQUIRE(kc.get(key->id())->id() == key->id());
    const KeySelector sel{key->id(), {}};
    kc.forget(&sel);
    REQUIRE(error_of(kc, sel) == ErrorCode::KeyNotPresent);  // forgotten: the plain answer again
    REQUIRE(kc.list(true).size() == 2);
}

TEST_CASE("a detach with a reason leaves keys that other origins keep, and plain detaches stay plain",
          "[core][keychain]") {
    Keychain kc;
    const KeyOrigin token{"token", "pkcs11:token=web;object=kek;type=secret-key", true};
    auto shared = aes_key(0x00, "shared");
    auto plain = aes_key(0x40, "plain");
    kc.add(shared, token);
    kc.add(shared, kOtherStick);
    kc.add(plain, kStick);
    REQUIRE(kc.detach_origins([&](const KeyOrigin& o) { return o == token; },
                              AbsentReason{ErrorCode::TokenError, "token \"web\" was removed"}) == 0);
    REQUIRE(kc.get(shared->id()) == shared);
    REQUIRE(kc.info(KeySelector{shared->id(), {}})->sources == std::vector<std::string>{kOtherStick.text()});

    REQUIRE(kc.detach_origins([](const KeyOrigin& o) { return o == kStick; }) == 1);
    REQUIRE(error_of(kc, KeySelector{plain->id(), {}}) == ErrorCode::KeyNotPresent);
    const auto listed = kc.list(true);
    const auto absent = std::find_if(listed.begin(), listed.end(), [](const KeyInfo& i) { return !i.present; });
    REQUIRE(absent != listed.end());
    REQUIRE(absent->sources.empty());
}

TEST_CASE("drop_expired drops keys whose time has come and reports the next expiry",
          "[core][keychain]") {
    Keychain kc;
    EventLog log;
    log.attach(kc);
    const auto now = Clock::now();
    auto soon = aes_key(0x00, "soon", now + std::chrono::hours(1));
    auto later = aes_key(0x40, "later", now + std::chrono::hours(2));
    auto never = aes_key(0x80, "never");
    kc.add(soon, kStick);
    kc.add(later, kStick);
    kc.add(never, kStick);
    REQUIRE(kc.next_expiry() == soon->expires());
    log.events.clear();

    REQUIRE(kc.drop_expired(now) == soon->expires());
    REQUIRE(kc.size() == 3);

    REQUIRE(kc.drop_expired(now + std::chrono::minutes(90)) == later->expires());
    REQUIRE(kc.size() == 2);
    REQUIRE(error_of(kc, KeySelector{soon->id(), {}}) == ErrorCode::KeyNotPresent);
    REQUIRE(log.events.size() == 1);
    REQUIRE(log.events[0].reason == "expired");
    REQUIRE(log.events[0].info.id == soon->id());

    REQUIRE_FALSE(kc.drop_expired(now + std::chrono::hours(3)));
    REQUIRE(kc.size() == 1);
    REQUIRE(kc.get(never->id()) == never);
}

TEST_CASE("a key that has already expired is not added", "[core][keychain]") {
    Keychain kc;
    auto old = aes_key(0x00, "old", Clock::now() - std::chrono::seconds(1));
    REQUIRE(kc.add(old, kStick) == Keychain::AddOutcome::Expired);
    REQUIRE(kc.size() == 0);
    REQUIRE(error_of(kc, KeySelector{old->id(), {}}) == ErrorCode::NoSuchKey);
}

TEST_CASE("the listener hears every add and removal with its reason", "[core][keychain]") {
    Keychain kc;
    EventLog log;
    log.attach(kc);
    auto a = aes_key(0x00, "a");
    auto b = aes_key(0x40, "b");
    kc.add(a, kStick);
    kc.add(b, kConfigFile);
    kc.forget(nullptr, "shutdown");
    REQUIRE(log.events.size() == 4);
    REQUIRE(log.events[0].type == KeyEventType::Added);
    REQUIRE(log.events[0].info.label == "a");
    REQUIRE(log.events[0].info.sources == std::vector<std::string>{kStick.text()});
    REQUIRE(log.events[0].info.tethered);
    REQUIRE(log.events[1].type == KeyEventType::Added);
    REQUIRE_FALSE(log.events[1].info.tethered);
    for (size_t i = 2; i < 4; ++i) {
        REQUIRE(log.events[i].type == KeyEventType::Removed);
        REQUIRE(log.events[i].reason == "shutdown");
    }

    // A listener may call back into the keychain: it runs outside the lock.
    size_t seen_size = 99;
    kc.set_listener([&](const KeyEvent&) { seen_size = kc.size(); });
    kc.add(a, kStick);
    REQUIRE(seen_size == 1);
}

TEST_CASE("list sorts keys by label, then id", "[core][keychain]") {
    Keychain kc;
    kc.add(aes_key(0x00, "zeta"), kStick);
    kc.add(aes_key(0x40, "alpha"), kStick);
    kc.add(aes_key(0x80, "mid"), kStick);
    const auto l = kc.list(false);
    REQUIRE(l.size() == 3);
    REQUIRE(l[0].label == "alpha");
    REQUIRE(l[1].label == "mid");
    REQUIRE(l[2].label == "zeta");
}

TEST_CASE("an AES key must be 32 bytes", "[core][keychain]") {
    for (size_t n : {0u, 16u, 31u, 33u}) {
        INFO(n << " bytes");
        REQUIRE_THROWS_MATCHES(Key::aes(SecretBytes(n), "x"), KeychainError,
                               Catch::Matchers::Message("an AES key must be 32 bytes, got " +
                                                        std::to_string(n)));
    }
}

TEST_CASE("a key's description for requests follows its origins as they come and go", "[core][keychain]") {
    // Requests match policy rules against this description, made when the entry changes: a
    // stale one would let a rule on a source that is gone still match.
    Keychain kc;
    auto key = aes_key(0x00, "db");
    kc.add(key, kStick);
    const KeySelector sel{key->id(), {}};
    auto d = kc.get_described(sel);
    REQUIRE(d.key == key);
    REQUIRE(d.description->facts.id == key->id().hex());
    REQUIRE(d.description->facts.label == "db");
    REQUIRE(d.description->facts.sources == std::vector<std::string>{kStick.text()});
    REQUIRE(d.description->info.tethered);

    kc.add(aes_key(0x00, "db"), kConfigFile);
    d = kc.get_described(sel);
    REQUIRE(d.description->facts.sources == std::vector<std::string>{kStick.text(), kConfigFile.text()});
    REQUIRE_FALSE(d.description->info.tethered);

    kc.detach_origins([](const KeyOrigin& o) { return o == kStick; });
    d = kc.get_described(sel);
    REQUIRE(d.description->facts.sources == std::vector<std::string>{kConfigFile.text()});
    REQUIRE(d.description->info.sources == d.description->facts.sources);
}
