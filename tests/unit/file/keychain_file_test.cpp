// The .4DKeyChain parser: entries, defaults, entry errors, whole-file refusals, secrecy.
#include "file/keychain_file.h"

#include <mbedtls/sha256.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/key_id.h"
#include "core/keychain.h"
#include "file_test_support.h"
#include "test_keys.h"

using namespace keychaind;
using namespace keychaind::file;
using keychaind::test::as_span;
using keychaind::test::make_identity;
using keychaind::test::none_shares;
using nlohmann::json;

namespace {

constexpr std::string_view kWhere = "/media/x/keys.4DKeyChain";
constexpr std::string_view kHex =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr std::string_view kBase64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

ParseResult parse(std::string_view content) {
    return parse_keychain_file(as_span(content), kWhere);
}

// The message of the KeychainError(BadRequest) that refuses the whole file.
std::string refusal(std::string_view content) {
    try {
        (void)parse(content);
    } catch (const KeychainError& e) {
        REQUIRE(e.code() == ErrorCode::BadRequest);
        return e.what();
    }
    FAIL("the file was accepted");
    return {};
}

std::vector<uint8_t> counting_key() {
    std::vector<uint8_t> k(32);
    for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i);
    return k;
}

KeyId passphrase_id(std::string_view p) {
    uint8_t digest[32];
    mbedtls_sha256_ret(reinterpret_cast<const unsigned char*>(p.data()), p.size(), digest, 0);
    return KeyId::for_symmetric_key(digest);
}

std::string problem(size_t index, std::string_view reason) {
    return std::string(kWhere) + " entry " + std::to_string(index) + ": " + std::string(reason);
}

SystemTime utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
    using namespace std::chrono;
    return SystemTime(sys_days(year{y} / month{mo} / day{d}) + hours(h) + minutes(mi) + seconds(s));
}

}  // namespace

TEST_CASE("a single object gives one key labelled after the file", "[file][parser]") {
    const auto r = parse(json({{"encodedKey", kHex}}).dump());
    REQUIRE(r.problems.empty());
    REQUIRE(r.entries.size() == 1);
    const auto& e = r.entries[0];
    CHECK(e.index == 0);
    CHECK_FALSE(e.tethered);
    CHECK(e.key->label() == "keys");
    CHECK(e.key->kind() == KeyKind::Aes256);
    CHECK(e.key->aes_material().equals(counting_key()));
    CHECK(e.key->id() == KeyId::for_symmetric_key(counting_key()));
    CHECK_FALSE(e.key->expires().has_value());
}

TEST_CASE("an array mixes hex, base64, passphrase and TLS identities in every PEM form",
          "[file][parser]") {
    const auto rsa = make_identity(KeyKind::Rsa);
    const auto p256 = make_identity(KeyKind::EcP256);
    json j = json::array();
    j.push_back({{"encodedKey", kHex}});
    j.push_back({{"encodedKey", kBase64}, {"name", "b64"}});
    j.push_back({{"passPhrase", "correct horse battery staple"}});
    j.push_back({{"privateKey", rsa.key_pem_legacy}, {"certificate", rsa.cert_pem}});
    j.push_back(
        {{"privateKey", rsa.key_pem_pkcs8}, {"certificate", rsa.cert_pem}, {"name", "rsa8"}});
    j.push_back({{"privateKey", p256.key_pem_legacy}, {"certificate", p256.cert_pem}});
    j.push_back({{"privateKey", p256.key_pem_pkcs8}});
    const auto r = parse(j.dump(2));
    REQUIRE(r.problems.empty());
    REQUIRE(r.entries.size() == 7);
    for (size_t i = 0; i < r.entries.size(); ++i) CHECK(r.entries[i].index == i);

    CHECK(r.entries[0].key->label() == "keys#0");
    CHECK(r.entries[1].key->label() == "b64");
    CHECK(r.entries[1].key->id() == r.entries[0].key->id());
    CHECK(r.entries[2].key->label() == "keys#2");
    CHECK(r.entries[2].key->id() == passphrase_id("correct horse battery staple"));

    const auto rsa_id = KeyId::for_public_key(rsa.spki_der);
    for (size_t i : {3, 4}) {
        const Key& k = *r.entries[i].key;
        CHECK(k.kind() == KeyKind::Rsa);
        CHECK(k.bits() == 2048);
        CHECK(k.id() == rsa_id);
        REQUIRE(k.certificates().size() == 1);
        CHECK(k.certificates()[0] == rsa.cert_der);
    }
    CHECK(r.entries[4].key->label() == "rsa8");
    const auto ec_id = KeyId::for_public_key(p256.spki_der);
    CHECK(r.entries[5].key->kind() == KeyKind::EcP256);
    CHECK(r.entries[5].key->id() == ec_id);
    CHECK(r.entries[5].key->certificates().size() == 1);
    CHECK(r.entries[6].key->id() == ec_id);
    CHECK(r.entries[6].key->certificates().empty());
}

TEST_CASE("EC P-384 and larger RSA identities load", "[file][parser]") {
    const auto p384 = make_identity(KeyKind::EcP384);
    json j = json::array({{{"privateKey", p384.key_pem_pkcs8}, {"certificate", p384.cert_pem}},
                          {{"privateKey", p384.key_pem_legacy}}});
    const auto r = parse(j.dump());
    REQUIRE(r.problems.empty());
    REQUIRE(r.entries.size() == 2);
    CHECK(r.entries[0].key->kind() == KeyKind::EcP384);
    CHECK(r.entries[1].key->id() == KeyId::for_public_key(p384.spki_der));
}

TEST_CASE("a certificate chain is kept leaf first", "[file][parser]") {
    const auto ca = make_identity(KeyKind::EcP256, 0, "test CA");
    const auto leaf = make_identity(KeyKind::EcP256, 0, "leaf");
    const std::string chain = test::issue_certificate(leaf, ca, "leaf") + ca.cert_pem;
    const auto r = parse(json({{"privateKey", leaf.key_pem_pkcs8}, {"certificate", chain}}).dump());
    REQUIRE(r.problems.empty());
    REQUIRE(r.entries.size() == 1);
    REQUIRE(r.entries[0].key->certificates().size() == 2);
    CHECK(r.entries[0].key->certificates()[1] == ca.cert_der);
}

TEST_CASE("a certificate that does not match the private key makes its entry bad",
          "[file][parser]") {
    const auto a = make_identity(KeyKind::EcP256);
    const auto b = make_identity(KeyKind::EcP256);
    json j = json::array(
        {{{"privateKey", a.key_pem_pkcs8}, {"certificate", b.cert_pem}}, {{"encodedKey", kHex}}});
    const auto r = parse(j.dump());
    REQUIRE(r.entries.size() == 1);
    CHECK(r.entries[0].index == 1);
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0] == problem(0, "the first certificate does not belong to the private key"));
}

TEST_CASE("a private key or certificate that does not parse makes its entry bad",
          "[file][parser]") {
    const auto a = make_identity(KeyKind::EcP256);
    json j = json::array(
        {{{"privateKey", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}},
         {{"privateKey", a.key_pem_pkcs8}, {"certificate", "not a certificate"}},
         {{"certificate", a.cert_pem}, {"passPhrase", "p"}}});
    const auto r = parse(j.dump());
    CHECK(r.entries.empty());
    REQUIRE(r.problems.size() == 3);
    CHECK_THAT(r.problems[0], Catch::StartsWith(problem(0, "private key does not parse")));
    CHECK_THAT(r.problems[1], Catch::StartsWith(problem(1, "certificate does not parse")));
    CHECK(r.problems[2] == problem(2, "has a certificate but no privateKey"));
}

TEST_CASE("encodedKey of 63 or 65 hex digits names the count", "[file][parser]") {
    json j = json::array({{{"encodedKey", kHex.substr(0, 63)}},
                          {{"encodedKey", std::string(kHex) + "f"}},
                          {{"encodedKey", kHex}}});
    const auto r = parse(j.dump());
    REQUIRE(r.entries.size() == 1);
    CHECK(r.entries[0].index == 2);
    REQUIRE(r.problems.size() == 2);
    CHECK(r.problems[0] == problem(0, "encodedKey is 63 hex digits, need 64"));
    CHECK(r.problems[1] == problem(1, "encodedKey is 65 hex digits, need 64"));
}

TEST_CASE("encodedKey that is not base64 of 32 bytes makes its entry bad", "[file][parser]") {
    std::string not_base64(kBase64);
    not_base64[10] = '*';
    const std::string short_base64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd====";
    json j = json::array({{{"encodedKey", not_base64}}, {{"encodedKey", short_base64}}});
    const auto r = parse(j.dump());
    CHECK(r.entries.empty());
    REQUIRE(r.problems.size() == 2);
    for (size_t i = 0; i < 2; ++i)
        CHECK(r.problems[i] ==
              problem(i, "encodedKey of 44 characters is not the base64 form of 32 bytes"));
}

TEST_CASE("passPhrase key id is the id of the SHA-256 of the passphrase", "[file][parser]") {
    const auto r = parse(json({{"passPhrase", "correct horse battery staple"}}).dump());
    REQUIRE(r.entries.size() == 1);
    uint8_t digest[32];
    const std::string_view p = "correct horse battery staple";
    mbedtls_sha256_ret(reinterpret_cast<const unsigned char*>(p.data()), p.size(), digest, 0);
    CHECK(r.entries[0].key->id() == KeyId::for_symmetric_key(digest));
    CHECK(r.entries[0].key->aes_material().equals(digest));
    // The test vector docs/keychain-file.md gives.
    CHECK(to_hex(digest) == "c4bbcb1fbec99d65bf59d85c8cb62ee2db963f0fe106f483d9afa73bd4e39a8a");
    CHECK(r.entries[0].key->id().hex() == "e2476da18c49381dd34d6c5d1f398c9f");
    // Non-ASCII text is hashed as its UTF-8 bytes.
    const auto u = parse(R"({"passPhrase": "p\u00e4ss"})");
    REQUIRE(u.entries.size() == 1);
    CHECK(u.entries[0].key->id() == passphrase_id("p\xc3\xa4ss"));
}

TEST_CASE("problems never contain the secret text", "[file][parser]") {
    const std::string hex63(kHex.substr(0, 63));
    const std::string bad_hex =
        std::string(kHex.substr(0, 40)) + "zz" + std::string(kHex.substr(42));
    const std::string phrase = "correct horse battery staple";
    const std::string pem_junk =
        "-----BEGIN PRIVATE KEY-----\nTOPSECRETPEMBODYxyzzy\n-----END PRIVATE KEY-----\n";
    json j = json::array();
    j.push_back({{"encodedKey", hex63}});
    j.push_back({{"encodedKey", bad_hex}});
    j.push_back({{"encodedKey", kHex}, {"passPhrase", phrase}});
    j.push_back({{"passPhrase", phrase + std::string(1, '\0') + "tail"}});
    j.push_back({{"passPhrase", phrase}, {"name", 7}});
    j.push_back({{"privateKey", pem_junk}});
    j.push_back({{"passPhrase", phrase}, {"expires", "soon"}});
    j.push_back({{"passPhrase", phrase}, {"tethered", phrase}});
    const std::string text = j.dump();
    // and a duplicated passPhrase, written by hand
    const std::string file = text.substr(0, text.size() - 1) + R"(,{"passPhrase":")" + phrase +
                             R"(","passPhrase":")" + phrase + R"("}])";
    const auto r = parse(file);
    CHECK(r.entries.empty());
    REQUIRE(r.problems.size() == 9);
    for (const std::string& secret :
         {hex63, bad_hex, std::string(kHex), phrase, std::string("TOPSECRETPEMBODYxyzzy")})
        CHECK(none_shares(secret, r.problems));

    // A syntax error right after a secret: the refusal does not quote it.
    const std::string broken = R"({"passPhrase": "correct horse battery staple\q"})";
    const std::string why = refusal(broken);
    CHECK(none_shares(phrase, {why}));
    CHECK_THAT(why, Catch::Contains("is not valid JSON"));
}

TEST_CASE("NUL bytes refuse the file, an escaped U+0000 makes the entry bad", "[file][parser]") {
    using namespace std::string_literals;
    CHECK(refusal("{\"passPhrase\": \"a\0b\"}"s) ==
          std::string(kWhere) + " is not valid JSON: a NUL byte (line 1, column 18)");
    CHECK_THAT(refusal("\0{\"passPhrase\": \"ab\"}"s), Catch::Contains("is not valid JSON"));
    CHECK_THAT(refusal("{\"passPhrase\": \"ab\"}\0"s), Catch::Contains("is not valid JSON"));
    CHECK_THAT(refusal(std::string(100, '\0')), Catch::Contains("is not valid JSON"));
    const auto r =
        parse(R"([{"passPhrase": "a\u0000b"}, {"passPhrase": "ab", "name": "x\u0000"}])");
    CHECK(r.entries.empty());
    REQUIRE(r.problems.size() == 2);
    CHECK(r.problems[0] == problem(0, "passPhrase contains U+0000"));
    CHECK(r.problems[1] == problem(1, "name contains U+0000"));
}

TEST_CASE("a UTF-8 byte order mark at the start is accepted", "[file][parser]") {
    const auto r = parse("\xEF\xBB\xBF" + json({{"encodedKey", kHex}}).dump());
    REQUIRE(r.problems.empty());
    CHECK(r.entries.size() == 1);
    // Only at the start.
    CHECK_THAT(refusal(" \xEF\xBB\xBF{}"), Catch::Contains("is not valid JSON"));
}

TEST_CASE("100000 nested brackets are refused without a crash", "[file][parser]") {
    CHECK(refusal(std::string(100000, '[')) ==
          std::string(kWhere) + " nests deeper than 64 levels");
    CHECK(refusal(std::string(50000, '[') + std::string(50000, ']')) ==
          std::string(kWhere) + " nests deeper than 64 levels");
    std::string objects;
    for (int i = 0; i < 20000; ++i) objects += "{\"a\":";
    CHECK_THAT(refusal(objects), Catch::EndsWith("nests deeper than 64 levels"));
    // Nesting within the limit inside an unknown property is fine.
    std::string ok = R"({"encodedKey": ")" + std::string(kHex) + R"(", "x": )" +
                     std::string(60, '[') + std::string(60, ']') + "}";
    CHECK(parse(ok).entries.size() == 1);
}

TEST_CASE("a duplicated property makes its entry bad, the other entries load", "[file][parser]") {
    const std::string hex(kHex);
    const auto r = parse(R"([{"encodedKey":")" + hex + R"(","name":"a","name":"b"},)" +
                         R"({"encodedKey":")" + hex + R"(","encodedKey":")" + hex + R"("},)" +
                         R"({"passPhrase":"x","tethered":true,"tethered":true},)" +
                         R"({"passPhrase":"y","extra":1,"extra":2},)" +
                         R"({"passPhrase":"z","extra":{"k":1,"k":2}}])");
    REQUIRE(r.problems.size() == 4);
    CHECK(r.problems[0] == problem(0, "property \"name\" appears twice"));
    CHECK(r.problems[1] == problem(1, "property \"encodedKey\" appears twice"));
    CHECK(r.problems[2] == problem(2, "property \"tethered\" appears twice"));
    CHECK(r.problems[3] == problem(3, "property \"extra\" appears twice"));
    // Duplicates deeper down, inside a property we ignore, are not the entry's.
    REQUIRE(r.entries.size() == 1);
    CHECK(r.entries[0].index == 4);
}

TEST_CASE("huge numbers refuse the file without a crash", "[file][parser]") {
    const std::string hex(kHex);
    CHECK_THAT(refusal(R"({"encodedKey":")" + hex + R"(","extra":1e999999})"),
               Catch::Contains("is not valid JSON: a number is out of range"));
    CHECK_THAT(refusal(R"([-1e999999])"), Catch::Contains("a number is out of range"));
    // Big but finite numbers are just numbers.
    const auto r = parse(R"({"encodedKey":")" + hex +
                         R"(","extra":123456789012345678901234567890123456789,"more":1e300})");
    CHECK(r.entries.size() == 1);
    const auto t = parse(R"({"passPhrase":"x","tethered":1e308})");
    REQUIRE(t.problems.size() == 1);
    CHECK(t.problems[0] == problem(0, "tethered is a number, need true or false"));
}

TEST_CASE("invalid UTF-8 refuses the file", "[file][parser]") {
    const std::string where(kWhere);
    CHECK(refusal("{\"passPhrase\": \"caf\xe9\"}") == where + " is not valid UTF-8");
    CHECK(refusal("{\"passPhrase\": \"\xc0\xaf\"}") == where + " is not valid UTF-8");  // overlong
    CHECK(refusal("{\"passPhrase\": \"\xed\xa0\x80\"}") ==
          where + " is not valid UTF-8");  // surrogate
    CHECK(refusal("{\"passPhrase\": \"ab\xf0\x9f\"}") ==
          where + " is not valid UTF-8");  // truncated
    // An escaped lone surrogate is invalid JSON.
    CHECK_THAT(refusal(R"({"passPhrase": "\ud800"})"), Catch::Contains("is not valid JSON"));
}

TEST_CASE("text that is not JSON is refused with its line and column", "[file][parser]") {
    CHECK(refusal("{\n  \"passPhrase\": \"x\",\n  oops\n}") ==
          std::string(kWhere) +
              " is not valid JSON: syntax error while parsing object key - invalid literal (line "
              "3, column 3)");
    CHECK_THAT(refusal(""), Catch::Contains("is not valid JSON: syntax error"));
    CHECK_THAT(refusal("   "), Catch::Contains("is not valid JSON"));
    CHECK_THAT(refusal("[{}] []"), Catch::Contains("is not valid JSON"));
    CHECK_THAT(refusal("{\"a\":1,}"), Catch::Contains("is not valid JSON"));
    CHECK_THAT(refusal("// comment\n{}"), Catch::Contains("is not valid JSON"));
}

TEST_CASE("a top-level string, number, boolean or null is refused", "[file][parser]") {
    const std::string where(kWhere);
    CHECK(refusal(R"("D1AB")") == where + " is a string, need an object or an array");
    CHECK(refusal("42") == where + " is a number, need an object or an array");
    CHECK(refusal("true") == where + " is a boolean, need an object or an array");
    CHECK(refusal("null") == where + " is null, need an object or an array");
}

TEST_CASE("a file over 1 MiB is refused by the parser", "[file][parser]") {
    const std::string big(kMaxKeychainFileSize + 1, ' ');
    CHECK(refusal(big) == std::string(kWhere) + " is 1048577 bytes, over the 1 MiB limit");
    // Exactly 1 MiB is read.
    std::string fits = json({{"encodedKey", kHex}}).dump();
    fits.resize(kMaxKeychainFileSize, ' ');
    CHECK(parse(fits).entries.size() == 1);
}

TEST_CASE("an empty array is no keys and no problems", "[file][parser]") {
    const auto r = parse(" [ ] ");
    CHECK(r.entries.empty());
    CHECK(r.problems.empty());
}

TEST_CASE("an entry with no key or with two keys is bad", "[file][parser]") {
    const auto rsa = make_identity(KeyKind::EcP256);
    json j =
        json::array({json::object(),
                     {{"name", "only a name"}},
                     {{"encodedKey", kHex}, {"passPhrase", "p"}},
                     {{"passPhrase", "p"}, {"privateKey", rsa.key_pem_pkcs8}},
                     {{"encodedKey", kHex}, {"passPhrase", "p"}, {"privateKey", rsa.key_pem_pkcs8}},
                     {{"passPhrase", ""}}});
    const auto r = parse(j.dump());
    CHECK(r.entries.empty());
    REQUIRE(r.problems.size() == 6);
    CHECK(r.problems[0] == problem(0, "has no encodedKey, passPhrase or privateKey"));
    CHECK(r.problems[1] == problem(1, "has no encodedKey, passPhrase or privateKey"));
    CHECK(r.problems[2] == problem(2, "has both encodedKey and passPhrase; keep one"));
    CHECK(r.problems[3] == problem(3, "has both passPhrase and privateKey; keep one"));
    CHECK(r.problems[4] == problem(4, "has encodedKey, passPhrase and privateKey; keep one"));
    CHECK(r.problems[5] == problem(5, "passPhrase is empty"));
}

TEST_CASE("a property of the wrong type or an element that is not an object makes the entry bad",
          "[file][parser]") {
    const std::string hex(kHex);
    const auto r = parse(R"([{"encodedKey": 12},
                             {"passPhrase": ["a"]},
                             {"privateKey": {"pem": "x"}},
                             {"passPhrase": "p", "certificate": null},
                             {"passPhrase": "p", "name": 3},
                             {"passPhrase": "p", "tethered": "yes"},
                             {"passPhrase": "p", "expires": 1798761600},
                             "a string",
                             42,
                             [],
                             null,
                             {"passPhrase": "p", "name": "fine"}])");
    REQUIRE(r.entries.size() == 1);
    CHECK(r.entries[0].index == 11);
    const std::vector<std::string> expected = {
        problem(0, "encodedKey is a number, need a string"),
        problem(1, "passPhrase is an array, need a string"),
        problem(2, "privateKey is an object, need a string"),
        problem(3, "certificate is null, need a string"),
        problem(4, "name is a number, need a string"),
        problem(5, "tethered is a string, need true or false"),
        problem(6, "expires is a number, need a string"),
        problem(7, "is a string, need an object"),
        problem(8, "is a number, need an object"),
        problem(9, "is an array, need an object"),
        problem(10, "is null, need an object"),
    };
    CHECK(r.problems == expected);
}

TEST_CASE("unknown properties are ignored, whatever they hold", "[file][parser]") {
    const auto r =
        parse(R"({"encodedKey": ")" + std::string(kHex) +
              R"(", "comment": "4D ignores this", "version": 2, "nested": {"encodedKey": 5,
                         "list": [1, {"name": 1}]}, "passphrase": 7, "EncodedKey": null})");
    REQUIRE(r.problems.empty());
    REQUIRE(r.entries.size() == 1);
    CHECK(r.entries[0].key->label() == "keys");
}

TEST_CASE("name, tethered and expires are read", "[file][parser]") {
    json j = json::array({{{"encodedKey", kHex},
                           {"name", "kek"},
                           {"tethered", true},
                           {"expires", "2027-01-01T00:00:00Z"}},
                          {{"passPhrase", "p"},
                           {"name", ""},
                           {"tethered", false},
                           {"expires", "2027-01-01T02:00:00+02:00"}}});
    const auto r = parse(j.dump());
    REQUIRE(r.problems.empty());
    REQUIRE(r.entries.size() == 2);
    CHECK(r.entries[0].key->label() == "kek");
    CHECK(r.entries[0].tethered);
    CHECK(r.entries[0].key->expires() == utc(2027, 1, 1));
    CHECK(r.entries[1].key->label() == "keys#1");  // an empty name is no name
    CHECK_FALSE(r.entries[1].tethered);
    CHECK(r.entries[1].key->expires() == utc(2027, 1, 1));
}

TEST_CASE("a name over 255 bytes makes its entry bad", "[file][parser]") {
    json j = json::array({{{"passPhrase", "p"}, {"name", std::string(255, 'n')}},
                          {{"passPhrase", "p"}, {"name", std::string(256, 'n')}}});
    const auto r = parse(j.dump());
    REQUIRE(r.entries.size() == 1);
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0] == problem(1, "name is 256 bytes, over the 255-byte limit"));
}

TEST_CASE("the default label comes from the file name without its extension", "[file][parser]") {
    const std::string one = json({{"passPhrase", "p"}}).dump();
    auto label = [&](std::string_view where) {
        return parse_keychain_file(as_span(one), where).entries.at(0).key->label();
    };
    CHECK(label("/a/b/Production Keys.4DKeyChain") == "Production Keys");
    CHECK(label("KEYS.4dkeychain") == "KEYS");
    CHECK(label("/a/.4DKeyChain") == ".4DKeyChain");
    CHECK(label("/a/bad\xff.4DKeyChain") == "bad\\xff");
}

TEST_CASE("an expiry in the past parses and the keychain does not add the key", "[file][parser]") {
    const auto r = parse(json({{"encodedKey", kHex}, {"expires", "2001-01-01T00:00:00Z"}}).dump());
    REQUIRE(r.entries.size() == 1);
    CHECK(r.entries[0].key->expires() == utc(2001, 1, 1));
    Keychain kc;
    CHECK(kc.add(r.entries[0].key, {"file", "x#0", false}) == Keychain::AddOutcome::Expired);
    CHECK(kc.size() == 0);
}

TEST_CASE("expires accepts RFC 3339 times with Z or an offset and fractions", "[file][parser]") {
    using namespace std::chrono;
    CHECK(parse_rfc3339("2027-01-01T00:00:00Z") == utc(2027, 1, 1));
    CHECK(parse_rfc3339("2027-01-01t00:00:00z") == utc(2027, 1, 1));
    CHECK(parse_rfc3339("2027-01-01T02:30:00+02:30") == utc(2027, 1, 1));
    CHECK(parse_rfc3339("2026-12-31T19:00:00-05:00") == utc(2027, 1, 1));
    CHECK(parse_rfc3339("2027-01-01T00:00:00-00:00") == utc(2027, 1, 1));
    CHECK(parse_rfc3339("2027-01-01T00:00:00.5Z") == utc(2027, 1, 1) + milliseconds(500));
    CHECK(parse_rfc3339("2027-01-01T00:00:00.123456789Z") ==
          utc(2027, 1, 1) + nanoseconds(123456789));
    CHECK(parse_rfc3339("2028-02-29T12:00:00Z") == utc(2028, 2, 29, 12));
    CHECK(parse_rfc3339("2016-12-31T23:59:60Z") == utc(2017, 1, 1));  // a leap second
    CHECK(parse_rfc3339("1969-12-31T23:59:59Z") == SystemTime{});
    CHECK(parse_rfc3339("0001-01-01T00:00:00Z") == SystemTime{});
    CHECK(parse_rfc3339("2199-12-31T23:59:59Z") == utc(2199, 12, 31, 23, 59, 59));
}

TEST_CASE("expires that is not a strict RFC 3339 time is refused with the reason",
          "[file][parser]") {
    auto reason = [](std::string_view text) {
        try {
            (void)parse_rfc3339(text);
        } catch (const KeychainError& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    const std::string shape = "is not an RFC 3339 time like 2027-01-01T00:00:00Z";
    CHECK(reason("2027-01-01") == "expires \"2027-01-01\" " + shape);
    CHECK(reason("2027-01-01 00:00:00Z") == "expires \"2027-01-01 00:00:00Z\" " + shape);
    CHECK(reason("2027-1-01T00:00:00Z") == "expires \"2027-1-01T00:00:00Z\" " + shape);
    CHECK(reason("2027-01-01T00:00Z") == "expires \"2027-01-01T00:00Z\" " + shape);
    CHECK(reason("2027-01-01T00:00:00.Z") == "expires \"2027-01-01T00:00:00.Z\" " + shape);
    CHECK(reason("2027-01-01T00:00:00Z ") == "expires \"2027-01-01T00:00:00Z \" " + shape);
    CHECK(reason("2027-01-01T00:00:00+0200") == "expires \"2027-01-01T00:00:00+0200\" " + shape);
    CHECK(reason("+2027-01-01T00:00:00Z") == "expires \"+2027-01-01T00:00:00Z\" " + shape);
    CHECK(reason("2027-01-01T00:00:00") ==
          "expires \"2027-01-01T00:00:00\" has no time zone (end it with Z or an offset like "
          "+02:00)");
    CHECK(reason("2027-02-29T00:00:00Z") ==
          "expires \"2027-02-29T00:00:00Z\" is not a calendar date");
    CHECK(reason("2027-13-01T00:00:00Z") ==
          "expires \"2027-13-01T00:00:00Z\" is not a calendar date");
    CHECK(reason("2027-01-00T00:00:00Z") ==
          "expires \"2027-01-00T00:00:00Z\" is not a calendar date");
    CHECK(reason("2027-01-01T24:00:00Z") ==
          "expires \"2027-01-01T24:00:00Z\" has a time of day out of range");
    CHECK(reason("2027-01-01T00:60:00Z") ==
          "expires \"2027-01-01T00:60:00Z\" has a time of day out of range");
    CHECK(reason("2027-01-01T00:00:00+24:00") ==
          "expires \"2027-01-01T00:00:00+24:00\" has a time zone offset out of range");
    CHECK(reason("2027-01-01T00:00:00.1234567891Z") ==
          "expires \"2027-01-01T00:00:00.1234567891Z\" has more than 9 fractional digits");
    CHECK_THAT(reason("2200-01-01T00:00:00Z"), Catch::Contains("is after 2199-12-31T23:59:59Z"));
    CHECK_THAT(reason("9999-12-31T23:59:59Z"), Catch::Contains("leave expires out"));
    // In a file it is that entry's problem.
    const auto r = parse(json({{"passPhrase", "p"}, {"expires", "tomorrow"}}).dump());
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0] == problem(0, "expires \"tomorrow\" " + shape));
}

TEST_CASE("problems past 100 per file are counted in one line", "[file][parser]") {
    std::string many = "[";
    for (int i = 0; i < 1000; ++i) many += "1,";
    many += R"({"passPhrase":"p"}])";
    const auto r = parse(many);
    CHECK(r.entries.size() == 1);
    CHECK(r.entries[0].index == 1000);
    REQUIRE(r.problems.size() == kMaxProblemsPerFile + 1);
    CHECK(r.problems.back() == std::string(kWhere) + ": 900 more problems not listed");
}

TEST_CASE("the file name in messages is escaped", "[file][parser]") {
    try {
        (void)parse_keychain_file(as_span("42"), "/m/evil\n\x1b[31m.4DKeyChain");
        FAIL("accepted");
    } catch (const KeychainError& e) {
        CHECK(std::string(e.what()) ==
              "/m/evil\\x0a\\x1b[31m.4DKeyChain is a number, need an object or an array");
    }
}
