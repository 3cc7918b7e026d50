// encodedKey and passPhrase: the text forms of a 256-bit data key.
#include <mbedtls/sha256.h>

#include <catch2/catch.hpp>

#include "core/data_key_text.h"
#include "core/error.h"
#include "test_bytes.h"

using namespace keychaind;
using keychaind::core_test::counting_bytes;
using keychaind::core_test::shares_no_window;

namespace {

constexpr std::string_view kHexLower = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr std::string_view kHexUpper = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
constexpr std::string_view kBase64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

// The message of the KeychainError(BadRequest) that decoding `text` throws.
std::string refusal(std::string_view text) {
    try {
        (void)decode_encoded_key(text);
    } catch (const KeychainError& e) {
        REQUIRE(e.code() == ErrorCode::BadRequest);
        return e.what();
    }
    FAIL("encodedKey was accepted: " << text.size() << " characters");
    return {};
}

}  // namespace

TEST_CASE("encodedKey of 64 hex digits decodes in either case", "[core][data_key_text]") {
    const auto expected = counting_bytes(0x00, 32);
    REQUIRE(decode_encoded_key(kHexLower).equals(expected));
    REQUIRE(decode_encoded_key(kHexUpper).equals(expected));
    std::string mixed(kHexLower);
    mixed[21] = 'A';
    mixed[23] = 'B';
    REQUIRE(decode_encoded_key(mixed).equals(expected));
    // 4D's own example key is upper-case hex.
    const auto d1 = decode_encoded_key("D1AB499C9BE1F210BDB1D1AB499C9BE1F210BDB1D1AB499C9BE1F210BDB10000");
    REQUIRE(d1.size() == 32);
    REQUIRE(d1.data()[0] == 0xD1);
    REQUIRE(d1.data()[31] == 0x00);
}

TEST_CASE("encodedKey of 44 base64 characters decodes to the same 32 bytes", "[core][data_key_text]") {
    REQUIRE(decode_encoded_key(kBase64).equals(decode_encoded_key(kHexLower).span()));
}

TEST_CASE("encodedKey with too few or too many hex digits names the count", "[core][data_key_text]") {
    REQUIRE(refusal(kHexLower.substr(0, 63)) == "encodedKey is 63 hex digits, need 64");
    REQUIRE(refusal(std::string(kHexLower) + "a") == "encodedKey is 65 hex digits, need 64");
    REQUIRE(refusal(kHexUpper.substr(0, 32)) == "encodedKey is 32 hex digits, need 64");
    // 44 hex digits are also 44 valid base64 characters; the hex reading is the likely intent.
    REQUIRE(refusal(kHexLower.substr(0, 44)) == "encodedKey is 44 hex digits, need 64");
}

TEST_CASE("an empty encodedKey is named as empty", "[core][data_key_text]") {
    REQUIRE(refusal("") == "encodedKey is empty");
}

TEST_CASE("encodedKey of 64 characters with a non-hex digit names its position",
          "[core][data_key_text]") {
    std::string s(kHexLower);
    s[0] = 'g';
    REQUIRE(refusal(s) == "encodedKey has a non-hexadecimal character at position 1");
    s = kHexLower;
    s[39] = ' ';
    REQUIRE(refusal(s) == "encodedKey has a non-hexadecimal character at position 40");
    s = kHexLower;
    s[63] = 'z';
    REQUIRE(refusal(s) == "encodedKey has a non-hexadecimal character at position 64");
}

TEST_CASE("encodedKey of 44 characters that is not base64 of 32 bytes is refused",
          "[core][data_key_text]") {
    const std::string expected = "encodedKey of 44 characters is not the base64 form of 32 bytes";
    std::string bad(kBase64);
    bad[10] = '!';
    REQUIRE(refusal(bad) == expected);
    // 44 characters without padding encode 33 bytes.
    REQUIRE(refusal("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A") == expected);
    bad = kBase64;
    bad[20] = '=';
    REQUIRE(refusal(bad) == expected);
}

TEST_CASE("encodedKey of another length names the two accepted forms", "[core][data_key_text]") {
    REQUIRE(refusal("not a key at all") ==
            "encodedKey is 16 characters; need 64 hex digits or 44 base64 characters");
    REQUIRE(refusal(std::string(kBase64.substr(0, 43))) ==
            "encodedKey is 43 characters; need 64 hex digits or 44 base64 characters");
}

TEST_CASE("refusals of encodedKey never contain the text", "[core][data_key_text]") {
    const std::string secret_hex = "c0ffeedeadbeef";
    std::vector<std::string> inputs = {
        secret_hex + std::string(kHexLower.substr(0, 49)),          // 63 hex digits
        secret_hex + std::string(kHexLower.substr(0, 51)),          // 65 hex digits
        "Zq" + secret_hex + std::string(kHexLower.substr(0, 48)),   // 64 with non-hex
        "S3cr3t+Base64/Text!" + std::string(25, 'Q'),               // 44, bad base64
        "my secret passphrase, mistaken for a key",                 // other length
    };
    for (const auto& in : inputs) {
        const std::string msg = refusal(in);
        INFO("message: " << msg);
        REQUIRE(shares_no_window(in, msg));
    }
}

TEST_CASE("passphrase_key is SHA-256 of the passphrase's UTF-8 bytes", "[core][data_key_text]") {
    // FIPS 180-2 example: SHA-256("abc").
    REQUIRE(passphrase_key("abc").equals(
        core_test::unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")));
    const std::string_view utf8 = "p\xc3\xa4ssw\xc3\xb6rd \xf0\x9f\x94\x91";
    uint8_t digest[32];
    REQUIRE(mbedtls_sha256_ret(reinterpret_cast<const uint8_t*>(utf8.data()), utf8.size(), digest,
                               0) == 0);
    const SecretBytes key = passphrase_key(utf8);
    REQUIRE(key.size() == 32);
    REQUIRE(key.equals({digest, 32}));
    REQUIRE(passphrase_key(utf8).equals(key.span()));  // same passphrase, same key
}

TEST_CASE("an empty passphrase is refused", "[core][data_key_text]") {
    REQUIRE_THROWS_MATCHES(passphrase_key(""), KeychainError,
                           Catch::Matchers::Message("passPhrase is empty"));
}

TEST_CASE("encode_key_hex writes 64 lower-case digits that decode back", "[core][data_key_text]") {
    const SecretBytes key = decode_encoded_key(kHexUpper);
    const SecretBytes hex = encode_key_hex(key);
    REQUIRE(hex.view() == kHexLower);
    REQUIRE(decode_encoded_key(hex.view()).equals(key.span()));
}
