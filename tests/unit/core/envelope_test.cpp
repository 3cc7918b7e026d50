// KCW1 envelope: the published test vectors, round trips, tampering and limits.
#include <catch2/catch.hpp>

#include "core/crypto_backend.h"
#include "core/envelope.h"
#include "core/key.h"
#include "core/error.h"
#include "test_bytes.h"

using namespace keychaind;
using namespace std::literals;
using keychaind::core_test::as_bytes;
using keychaind::core_test::counting_bytes;
using keychaind::core_test::unhex;

namespace {

// The vectors of docs/envelope.md. They were computed by a separate program calling
// mbedtls_gcm_crypt_and_tag directly (and checked with Python's cryptography AESGCM), not by
// envelope.cpp: KEK = 00..1f, nonce = c0..cb, data key = a0..bf.
constexpr std::string_view kKekIdHex = "c2556e1bed6290afe38f296b36cceaf6";
constexpr std::string_view kWrappedDbUsers =
    "4b435731"
    "c2556e1bed6290afe38f296b36cceaf6"
    "c0c1c2c3c4c5c6c7c8c9cacb"
    "a0e985c4d3dd30f9307057099e0146f9fcc2518c8857a90d927af1b18bc0c109"
    "45774132050087bc28629873fbe4c1e4";
constexpr std::string_view kWrappedNoContext =
    "4b435731"
    "c2556e1bed6290afe38f296b36cceaf6"
    "c0c1c2c3c4c5c6c7c8c9cacb"
    "a0e985c4d3dd30f9307057099e0146f9fcc2518c8857a90d927af1b18bc0c109"
    "f76cd236674cc3cc9ed0f779700d4168";

// A KEK over raw bytes of any length, so the size checks below the envelope can be reached.
struct RawKek final : AesKey {
    explicit RawKek(std::vector<uint8_t> b) : bytes(std::move(b)) {}
    std::vector<uint8_t> bytes;
    void gcm_encrypt(std::span<const uint8_t> nonce, std::span<const uint8_t> aad,
                     std::span<const uint8_t> pt, std::span<uint8_t> ct,
                     std::span<uint8_t> tag) const override {
        crypto_backend().aes256_gcm_encrypt(bytes, nonce, aad, pt, ct, tag);
    }
    bool gcm_decrypt(std::span<const uint8_t> nonce, std::span<const uint8_t> aad,
                     std::span<const uint8_t> ct, std::span<const uint8_t> tag,
                     std::span<uint8_t> pt) const override {
        return crypto_backend().aes256_gcm_decrypt(bytes, nonce, aad, ct, tag, pt);
    }
};

struct Fixture {
    RawKek kek{counting_bytes(0x00, 32)};
    KeyId kek_id = KeyId::for_symmetric_key(kek.bytes);
    std::vector<uint8_t> nonce = counting_bytes(0xc0, 12);
    std::vector<uint8_t> data_key = counting_bytes(0xa0, 32);
};

KeychainError unwrap_error(const AesKey& kek, std::span<const uint8_t> wrapped,
                           std::span<const uint8_t> context) {
    auto view = envelope::parse(wrapped);
    REQUIRE(view);
    try {
        (void)envelope::unwrap(kek, *view, context);
    } catch (const KeychainError& e) {
        return e;
    }
    FAIL("unwrap accepted a wrapped key it should refuse");
    return KeychainError(ErrorCode::Ok, "");
}

}  // namespace

TEST_CASE("the KEK id of the test vectors is derived from the KEK", "[core][envelope]") {
    Fixture f;
    REQUIRE(f.kek_id.hex() == kKekIdHex);
}

TEST_CASE("wrap with a fixed nonce reproduces the KCW1 test vectors", "[core][envelope]") {
    Fixture f;
    SECTION("context \"db:users\"") {
        const auto wrapped = envelope::wrap(f.kek_id, f.kek, f.data_key, as_bytes("db:users"), f.nonce);
        REQUIRE(wrapped.size() == 80);
        REQUIRE(wrapped == unhex(kWrappedDbUsers));
    }
    SECTION("empty context") {
        const auto wrapped = envelope::wrap(f.kek_id, f.kek, f.data_key, {}, f.nonce);
        REQUIRE(wrapped == unhex(kWrappedNoContext));
    }
}

TEST_CASE("the KCW1 test vectors unwrap to the data key", "[core][envelope]") {
    Fixture f;
    const auto wrapped = unhex(kWrappedDbUsers);
    const auto view = envelope::parse(wrapped);
    REQUIRE(view);
    REQUIRE(view->kek_id == f.kek_id);
    REQUIRE(std::vector<uint8_t>(view->nonce.begin(), view->nonce.end()) == f.nonce);
    REQUIRE(view->ciphertext.size() == 32);
    REQUIRE(view->tag.size() == 16);
    REQUIRE(envelope::unwrap(f.kek, *view, as_bytes("db:users")).equals(f.data_key));

    const auto plain = unhex(kWrappedNoContext);
    REQUIRE(envelope::unwrap(f.kek, *envelope::parse(plain), {}).equals(f.data_key));
}

TEST_CASE("wrap draws a fresh nonce each time and both results unwrap", "[core][envelope]") {
    Fixture f;
    const auto a = envelope::wrap(f.kek_id, f.kek, f.data_key, as_bytes("db:users"));
    const auto b = envelope::wrap(f.kek_id, f.kek, f.data_key, as_bytes("db:users"));
    const auto va = envelope::parse(a), vb = envelope::parse(b);
    REQUIRE(va);
    REQUIRE(vb);
    REQUIRE_FALSE(std::equal(va->nonce.begin(), va->nonce.end(), vb->nonce.begin()));
    REQUIRE(a != b);
    REQUIRE(envelope::unwrap(f.kek, *va, as_bytes("db:users")).equals(f.data_key));
    REQUIRE(envelope::unwrap(f.kek, *vb, as_bytes("db:users")).equals(f.data_key));
}

TEST_CASE("unwrap with a different context is refused", "[core][envelope]") {
    Fixture f;
    const auto wrapped = unhex(kWrappedDbUsers);
    for (std::string_view other : {""sv, "db:user"sv, "db:users "sv, "db:Users"sv, "db:users\0"sv}) {
        INFO("context \"" << other << "\"");
        const auto e = unwrap_error(f.kek, wrapped, as_bytes(other));
        REQUIRE(e.code() == ErrorCode::BadRequest);
    }
    const auto e = unwrap_error(f.kek, unhex(kWrappedNoContext), as_bytes("db:users"));
    REQUIRE(e.code() == ErrorCode::BadRequest);
    REQUIRE(std::string(e.what()).find("does not authenticate") != std::string::npos);
}

TEST_CASE("unwrap under another KEK is refused", "[core][envelope]") {
    const RawKek other(counting_bytes(0x01, 32));
    REQUIRE(unwrap_error(other, unhex(kWrappedDbUsers), as_bytes("db:users")).code() ==
            ErrorCode::BadRequest);
}

TEST_CASE("a flipped magic byte makes parse refuse the wrapped key", "[core][envelope]") {
    const size_t offset = GENERATE(0u, 1u, 2u, 3u);
    auto wrapped = unhex(kWrappedDbUsers);
    wrapped[offset] ^= 0x01;
    REQUIRE_FALSE(envelope::parse(wrapped));
}

TEST_CASE("a flipped byte in the KEK id, nonce, ciphertext or tag fails authentication",
          "[core][envelope]") {
    Fixture f;
    // first and last byte of each region: kek id [4,20), nonce [20,32), ciphertext [32,64), tag [64,80)
    const size_t offset = GENERATE(4u, 19u, 20u, 31u, 32u, 63u, 64u, 79u);
    auto wrapped = unhex(kWrappedDbUsers);
    wrapped[offset] ^= 0x80;
    INFO("byte " << offset);
    const auto view = envelope::parse(wrapped);
    REQUIRE(view);  // the layout is intact: only authentication can notice
    if (offset < 20) REQUIRE_FALSE(view->kek_id == f.kek_id);
    const auto e = unwrap_error(f.kek, wrapped, as_bytes("db:users"));
    REQUIRE(e.code() == ErrorCode::BadRequest);
    REQUIRE(std::string(e.what()) ==
            "wrapped key does not authenticate (wrong context or altered bytes)");
}

TEST_CASE("parse refuses wrapped keys too short or too long to hold a 1..1024-byte data key",
          "[core][envelope]") {
    const auto wrapped = unhex(kWrappedDbUsers);
    SECTION("truncated") {
        for (size_t n : {0u, 3u, 4u, 20u, 32u, 47u}) {
            INFO(n << " bytes");
            REQUIRE_FALSE(envelope::parse(std::span<const uint8_t>(wrapped).first(n)));
        }
        REQUIRE_FALSE(envelope::parse(std::span<const uint8_t>(wrapped).first(envelope::kOverhead)));
    }
    SECTION("a truncated ciphertext still parses but does not authenticate") {
        Fixture f;
        std::vector<uint8_t> shorter(wrapped.begin(), wrapped.end());
        shorter.erase(shorter.begin() + 40);
        REQUIRE(unwrap_error(f.kek, shorter, as_bytes("db:users")).code() == ErrorCode::BadRequest);
    }
    SECTION("oversized") {
        std::vector<uint8_t> big(envelope::kOverhead + envelope::kMaxDataKeySize, 0);
        std::copy(wrapped.begin(), wrapped.begin() + 32, big.begin());
        REQUIRE(envelope::parse(big));
        big.push_back(0);
        REQUIRE_FALSE(envelope::parse(big));
    }
}

TEST_CASE("data keys of 1 and 1024 bytes wrap and unwrap", "[core][envelope]") {
    Fixture f;
    const size_t n = GENERATE(1u, 2u, 16u, 1023u, 1024u);
    const auto data_key = counting_bytes(0x33, n);
    const auto wrapped = envelope::wrap(f.kek_id, f.kek, data_key, as_bytes("ctx"));
    REQUIRE(wrapped.size() == envelope::kOverhead + n);
    const auto view = envelope::parse(wrapped);
    REQUIRE(view);
    const SecretBytes back = envelope::unwrap(f.kek, *view, as_bytes("ctx"));
    REQUIRE(back.size() == n);
    REQUIRE(back.equals(data_key));
}

TEST_CASE("data keys of 0 or 1025 bytes are refused", "[core][envelope]") {
    Fixture f;
    const size_t n = GENERATE(0u, 1025u, 4096u);
    try {
        (void)envelope::wrap(f.kek_id, f.kek, std::vector<uint8_t>(n, 1), {});
        FAIL("wrap accepted a " << n << "-byte data key");
    } catch (const KeychainError& e) {
        REQUIRE(e.code() == ErrorCode::BadRequest);
        REQUIRE(std::string(e.what()) == "a data key must be 1 to 1024 bytes");
    }
}

TEST_CASE("a context of 4096 bytes is accepted and one of 4097 is refused", "[core][envelope]") {
    Fixture f;
    const std::vector<uint8_t> max_context(envelope::kMaxContextSize, 'c');
    const auto wrapped = envelope::wrap(f.kek_id, f.kek, f.data_key, max_context);
    REQUIRE(envelope::unwrap(f.kek, *envelope::parse(wrapped), max_context).equals(f.data_key));

    const std::vector<uint8_t> too_long(envelope::kMaxContextSize + 1, 'c');
    try {
        (void)envelope::wrap(f.kek_id, f.kek, f.data_key, too_long);
        FAIL("wrap accepted a 4097-byte context");
    } catch (const KeychainError& e) {
        REQUIRE(e.code() == ErrorCode::BadRequest);
        REQUIRE(std::string(e.what()) == "context is longer than 4096 bytes");
    }
    try {
        (void)envelope::unwrap(f.kek, *envelope::parse(wrapped), too_long);
        FAIL("unwrap accepted a 4097-byte context");
    } catch (const KeychainError& e) {
        REQUIRE(e.code() == ErrorCode::BadRequest);
    }
}

TEST_CASE("wrap refuses a KEK id that is not an AES key id and a nonce that is not 12 bytes",
          "[core][envelope]") {
    Fixture f;
    const KeyId asym = KeyId::for_public_key(counting_bytes(0, 40));
    REQUIRE_THROWS_MATCHES(envelope::wrap(asym, f.kek, f.data_key, {}), KeychainError,
                           Catch::Matchers::Message("the KEK is not an AES key"));
    REQUIRE_THROWS_MATCHES(envelope::wrap(KeyId{}, f.kek, f.data_key, {}), KeychainError,
                           Catch::Matchers::Message("the KEK is not an AES key"));
    for (size_t n : {1u, 11u, 13u, 16u}) {
        INFO(n << "-byte nonce");
        REQUIRE_THROWS_MATCHES(envelope::wrap(f.kek_id, f.kek, f.data_key, {}, counting_bytes(0, n)),
                               KeychainError, Catch::Matchers::Message("nonce must be 12 bytes"));
    }
}

TEST_CASE("a KEK that is not 32 bytes is refused before the cipher reads it", "[core][envelope]") {
    // mbedTLS would read 32 bytes whatever the span holds; under ASan a short KEK would show as a
    // heap over-read if the size were not checked first.
    Fixture f;
    const auto wrapped = unhex(kWrappedDbUsers);
    auto view = envelope::parse(wrapped);
    REQUIRE(view);
    for (size_t n : {0u, 16u, 31u, 33u}) {
        INFO(n << "-byte KEK");
        const RawKek kek(counting_bytes(0, n));
        REQUIRE_THROWS_MATCHES(envelope::wrap(f.kek_id, kek, f.data_key, {}), KeychainError,
                               Catch::Matchers::Message("AES-256-GCM needs a 32-byte key, got " +
                                                        std::to_string(n)));
        REQUIRE_THROWS_AS(envelope::unwrap(kek, *view, as_bytes("db:users")), KeychainError);
    }
}

TEST_CASE("a software AES key from Key::aes wraps to the same bytes as the raw KEK", "[core][envelope]") {
    Fixture f;
    const auto key = Key::aes(SecretBytes(f.kek.bytes.data(), f.kek.bytes.size()), "kek");
    REQUIRE(key->id() == f.kek_id);
    REQUIRE(key->aes_key() != nullptr);
    const auto wrapped = envelope::wrap(key->id(), *key->aes_key(), f.data_key, as_bytes("db:users"), f.nonce);
    REQUIRE(wrapped == unhex(kWrappedDbUsers));
}
