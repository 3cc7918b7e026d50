// KeyId: derivation from AES material and from public keys, and its hex form.
#include <mbedtls/sha256.h>

#include <catch2/catch.hpp>

#include "core/crypto_backend.h"
#include "core/key.h"
#include "core/key_id.h"
#include "test_bytes.h"
#include "generated_keys.h"

using namespace keychaind;
using keychaind::core_test::counting_bytes;

TEST_CASE("a symmetric key id is the first 16 bytes of SHA-256 of \"keychaind key-id v1\" and the key",
          "[core][key_id]") {
    const auto key = counting_bytes(0x00, 32);
    static constexpr std::string_view kContext = "keychaind key-id v1";
    uint8_t digest[32];
    mbedtls_sha256_context ctx;
    mbedtls_sha256_init(&ctx);
    REQUIRE(mbedtls_sha256_starts_ret(&ctx, 0) == 0);
    REQUIRE(mbedtls_sha256_update_ret(&ctx, reinterpret_cast<const uint8_t*>(kContext.data()),
                                      kContext.size()) == 0);
    REQUIRE(mbedtls_sha256_update_ret(&ctx, key.data(), key.size()) == 0);
    REQUIRE(mbedtls_sha256_finish_ret(&ctx, digest) == 0);
    mbedtls_sha256_free(&ctx);

    const KeyId id = KeyId::for_symmetric_key(key);
    REQUIRE(id.size() == KeyId::kSymmetricSize);
    REQUIRE(std::vector<uint8_t>(id.bytes().begin(), id.bytes().end()) ==
            std::vector<uint8_t>(digest, digest + 16));
    // Pinned: the KEK id of docs/envelope.md's test vectors.
    REQUIRE(id.hex() == "c2556e1bed6290afe38f296b36cceaf6");
}

TEST_CASE("an AES key's id does not depend on its label or expiry", "[core][key_id]") {
    const auto material = counting_bytes(0x00, 32);
    auto a = Key::aes(SecretBytes(std::span<const uint8_t>(material)), "one");
    auto b = Key::aes(SecretBytes(std::span<const uint8_t>(material)), "two",
                      std::chrono::system_clock::now() + std::chrono::hours(1));
    REQUIRE(a->id() == b->id());
    REQUIRE(a->id() == KeyId::for_symmetric_key(material));
}

TEST_CASE("an asymmetric key id is SHA-256 of its SubjectPublicKeyInfo DER", "[core][key_id]") {
    const auto& generated = core_test::ec_key(MBEDTLS_ECP_DP_SECP256R1);
    uint8_t digest[32];
    REQUIRE(mbedtls_sha256_ret(generated.spki_der.data(), generated.spki_der.size(), digest, 0) == 0);
    const std::vector<uint8_t> expected(digest, digest + 32);

    const KeyId id = KeyId::for_public_key(generated.spki_der);
    REQUIRE(id.size() == KeyId::kAsymmetricSize);
    REQUIRE(std::vector<uint8_t>(id.bytes().begin(), id.bytes().end()) == expected);

    auto key = Key::identity(crypto_backend().parse_private_key(generated.private_der.span()), {}, "web");
    REQUIRE(key->public_key_der() == generated.spki_der);
    REQUIRE(key->id() == id);
}

TEST_CASE("a key id survives a round trip through hex", "[core][key_id]") {
    const KeyId sym = KeyId::for_symmetric_key(counting_bytes(0x40, 32));
    const KeyId asym = KeyId::for_public_key(counting_bytes(0x10, 91));
    for (const KeyId& id : {sym, asym}) {
        const std::string hex = id.hex();
        REQUIRE(hex.size() == id.size() * 2);
        REQUIRE(hex.find_first_not_of("0123456789abcdef") == std::string::npos);
        REQUIRE(KeyId::from_hex(hex) == id);
        std::string upper = hex;
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        REQUIRE(KeyId::from_hex(upper) == id);
        REQUIRE(KeyId::from_bytes(id.bytes()) == id);
    }
    REQUIRE_FALSE(sym == asym);
}

TEST_CASE("to_hex and from_hex_string are inverse", "[core][key_id]") {
    const auto all = counting_bytes(0x00, 256);
    const std::string hex = to_hex(all);
    REQUIRE(hex.substr(0, 8) == "00010203");
    REQUIRE(hex.substr(hex.size() - 4) == "feff");
    const auto back = from_hex_string(hex);
    REQUIRE(back);
    REQUIRE(std::vector<uint8_t>(back->begin(), back->end()) == all);
    REQUIRE(from_hex_string("") == std::string());
}

TEST_CASE("from_hex refuses odd lengths, non-hex digits and sizes other than 16 or 32 bytes",
          "[core][key_id]") {
    const std::string good = KeyId::for_symmetric_key(counting_bytes(0, 32)).hex();
    SECTION("odd length") {
        REQUIRE_FALSE(KeyId::from_hex(good.substr(0, 31)));
        REQUIRE_FALSE(KeyId::from_hex(good + "0"));
        REQUIRE_FALSE(from_hex_string("abc"));
    }
    SECTION("non-hex digits") {
        for (const char* bad : {"g", "G", " ", "-", "x", "\xc3"}) {
            std::string s = good;
            s[7] = bad[0];
            INFO("digit " << static_cast<int>(static_cast<unsigned char>(bad[0])));
            REQUIRE_FALSE(KeyId::from_hex(s));
        }
        REQUIRE_FALSE(KeyId::from_hex("0x" + good.substr(2)));
        REQUIRE_FALSE(from_hex_string("zz"));
    }
    SECTION("wrong sizes") {
        for (size_t bytes : {0u, 1u, 15u, 17u, 24u, 31u, 33u, 64u}) {
            INFO(bytes << " bytes");
            REQUIRE_FALSE(KeyId::from_hex(std::string(bytes * 2, 'a')));
            REQUIRE_FALSE(KeyId::from_bytes(std::vector<uint8_t>(bytes, 0xaa)));
        }
        REQUIRE(KeyId::from_hex(std::string(32, 'a')));
        REQUIRE(KeyId::from_hex(std::string(64, 'a')));
    }
}

TEST_CASE("a default key id is empty and equals only another empty id", "[core][key_id]") {
    KeyId empty;
    REQUIRE(empty.empty());
    REQUIRE(empty.hex().empty());
    REQUIRE(empty == KeyId{});
    REQUIRE_FALSE(empty == KeyId::for_symmetric_key(counting_bytes(0, 32)));
}
