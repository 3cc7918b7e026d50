// KeyLedger: a stopped token source never touches the keychain again; its keys say why they went.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "core/keychain.h"
#include "token/key_ledger.h"

using namespace keychaind;
using namespace keychaind::token;

namespace {

std::shared_ptr<const Key> aes_key(uint8_t fill, const std::string& label) {
    std::vector<uint8_t> bytes(Key::kAesKeySize, fill);
    return Key::aes(SecretBytes(std::span<const uint8_t>(bytes)), label);
}

ErrorCode error_of(const Keychain& kc, const KeyId& id) {
    try {
        (void)kc.get(id);
    } catch (const KeychainError& e) {
        return e.code();
    }
    return ErrorCode::Ok;
}

}  // namespace

TEST_CASE("nothing is added before the ledger knows its keychain", "[token][ledger]") {
    KeyLedger ledger;
    REQUIRE_FALSE(ledger.add(aes_key(1, "k"), "pkcs11:token=web;object=k;type=secret-key", "web").has_value());
}

TEST_CASE("a token's keys are added as tethered token origins and detached with their reason", "[token][ledger]") {
    Keychain kc;
    KeyLedger ledger;
    ledger.attach(kc);
    const std::string where = "pkcs11:token=web;serial=1;object=k;type=secret-key";
    auto key = aes_key(1, "k");
    REQUIRE(ledger.add(key, where, "web") == Keychain::AddOutcome::Added);
    const auto info = kc.info(KeySelector{key->id(), {}});
    REQUIRE(info->sources == std::vector<std::string>{"token:" + where});
    REQUIRE(info->tethered);
    REQUIRE(ledger.detach({where}, AbsentReason{ErrorCode::TokenError, "token \"web\" was removed"}) == 1);
    REQUIRE(error_of(kc, key->id()) == ErrorCode::TokenError);
}

TEST_CASE("stopping the ledger makes its keys absent as reopening and refuses later adds", "[token][ledger]") {
    Keychain kc;
    KeyLedger ledger;
    ledger.attach(kc);
    auto web = aes_key(1, "w");
    auto db = aes_key(2, "d");
    ledger.add(web, "pkcs11:token=web;object=w;type=secret-key", "web");
    ledger.add(db, "pkcs11:token=db;object=d;type=secret-key", "db");
    ledger.stop();
    REQUIRE(ledger.stopped());
    REQUIRE(kc.size() == 0);
    REQUIRE_THROWS_WITH(kc.get(web->id()), "key " + web->id().hex() + ": token \"web\" is being reopened");
    REQUIRE_THROWS_WITH(kc.get(db->id()), "key " + db->id().hex() + ": token \"db\" is being reopened");
    REQUIRE_FALSE(ledger.add(web, "pkcs11:token=web;object=w;type=secret-key", "web").has_value());
    REQUIRE(ledger.detach({"pkcs11:token=web;object=w;type=secret-key"}, std::nullopt) == 0);
    REQUIRE(kc.size() == 0);
}
