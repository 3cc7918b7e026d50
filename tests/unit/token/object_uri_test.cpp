// PKCS#11 URIs: which tokens and objects a config's URIs select, and the URIs keychaind writes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>

#include "token/object_uri.h"
#include "token/pkcs11_error.h"

using namespace keychaind::token;
using Bytes = std::vector<uint8_t>;

namespace {

void put(CK_UTF8CHAR* field, size_t size, std::string_view text) {
    std::fill(field, field + size, ' ');
    std::memcpy(field, text.data(), std::min(size, text.size()));
}

CK_TOKEN_INFO token(std::string_view label, std::string_view serial, std::string_view manufacturer = "SoftHSM project",
                    std::string_view model = "SoftHSM v2") {
    CK_TOKEN_INFO t{};
    put(t.label, sizeof t.label, label);
    put(t.serialNumber, sizeof t.serialNumber, serial);
    put(t.manufacturerID, sizeof t.manufacturerID, manufacturer);
    put(t.model, sizeof t.model, model);
    return t;
}

}  // namespace

TEST_CASE("a token URI matches on the attributes it names", "[token][uri]") {
    const auto web = token("web", "111ed75496bd15ec");
    const auto db = token("db", "222ed75496bd15ec");
    REQUIRE(Pkcs11Uri::for_token("pkcs11:token=web").matches_token(web));
    REQUIRE_FALSE(Pkcs11Uri::for_token("pkcs11:token=web").matches_token(db));
    REQUIRE(Pkcs11Uri::for_token("pkcs11:serial=222ed75496bd15ec").matches_token(db));
    REQUIRE(Pkcs11Uri::for_token("pkcs11:token=web;manufacturer=SoftHSM%20project;model=SoftHSM%20v2").matches_token(web));
    REQUIRE_FALSE(Pkcs11Uri::for_token("pkcs11:token=web;serial=222ed75496bd15ec").matches_token(web));
    REQUIRE(Pkcs11Uri::for_token("pkcs11:").matches_token(db));  // names nothing: any token
}

TEST_CASE("a token URI with object, slot or PIN parts, or another scheme, is refused", "[token][uri]") {
    REQUIRE_THROWS_AS(Pkcs11Uri::for_token("pkcs11:token=web;object=k"), TokenFault);
    REQUIRE_THROWS_AS(Pkcs11Uri::for_token("pkcs11:token=web;slot-id=3"), TokenFault);
    REQUIRE_THROWS_WITH(Pkcs11Uri::for_token("pkcs11:token=web?pin-value=1234"), Catch::Contains("carries a PIN"));
    REQUIRE_THROWS_WITH(Pkcs11Uri::for_token("https://example.com"), Catch::Contains("is not a pkcs11: URI"));
}

TEST_CASE("a key selector matches class, label and id, and its token part if any", "[token][uri]") {
    const auto web = token("web", "111ed75496bd15ec");
    const auto db = token("db", "222ed75496bd15ec");
    const Bytes id1 = {0x01};
    const Bytes id2 = {0x02};
    const auto private_ec = Pkcs11Uri::for_object("pkcs11:object=tls-ec;type=private");
    REQUIRE(private_ec.matches_object(web, CKO_PRIVATE_KEY, "tls-ec", id1));
    REQUIRE_FALSE(private_ec.matches_object(web, CKO_SECRET_KEY, "tls-ec", id1));
    REQUIRE_FALSE(private_ec.matches_object(web, CKO_PRIVATE_KEY, "tls-rsa", id1));
    const auto by_id = Pkcs11Uri::for_object("pkcs11:id=%02");
    REQUIRE(by_id.matches_object(web, CKO_SECRET_KEY, "anything", id2));
    REQUIRE_FALSE(by_id.matches_object(web, CKO_SECRET_KEY, "anything", id1));
    const auto on_db = Pkcs11Uri::for_object("pkcs11:token=db;type=secret-key");
    REQUIRE(on_db.matches_object(db, CKO_SECRET_KEY, "kek", id1));
    REQUIRE_FALSE(on_db.matches_object(web, CKO_SECRET_KEY, "kek", id1));
    REQUIRE_THROWS_AS(Pkcs11Uri::for_object("pkcs11:object=x;slot-id=1"), TokenFault);
}

TEST_CASE("the URI written for a key names its token and object and selects exactly it", "[token][uri]") {
    const Bytes id = {0x01, 0xab};
    const std::string uri = object_uri("web", "111ed75496bd15ec", "tls ec;1", id, CKO_PRIVATE_KEY);
    REQUIRE(uri == "pkcs11:token=web;serial=111ed75496bd15ec;object=tls%20ec%3b1;id=%01%ab;type=private");
    const auto parsed = Pkcs11Uri::for_object(uri);
    const auto web = token("web", "111ed75496bd15ec");
    REQUIRE(parsed.matches_object(web, CKO_PRIVATE_KEY, "tls ec;1", id));
    REQUIRE_FALSE(parsed.matches_object(web, CKO_PRIVATE_KEY, "tls ec;1", Bytes{0x01}));
    REQUIRE_FALSE(parsed.matches_object(token("web", "999"), CKO_PRIVATE_KEY, "tls ec;1", id));
    REQUIRE(object_uri("web", "", "kek", {}, CKO_SECRET_KEY) == "pkcs11:token=web;object=kek;type=secret-key");
}
