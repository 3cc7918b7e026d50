// Ed25519 (RFC 8032, pure): the OpenSSL backend signs with it, checked against the RFC's own
// test vectors; the mbedTLS backend (2.28 has no Ed25519) refuses its keys by name.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "backends.h"
#include "core/crypto_backend.h"
#include "core/error.h"
#include "generated_keys.h"
#include "test_bytes.h"

using namespace keychaind;
using keychaind::core_test::backend_named;
using keychaind::core_test::unhex;

namespace {

// RFC 8032 section 7.1, TEST 1 to 3: SECRET KEY (the 32-byte seed), PUBLIC KEY, MESSAGE,
// SIGNATURE, copied from the RFC text.
struct RfcVector {
    const char* name;
    const char* seed;
    const char* public_key;
    const char* message;
    const char* signature;
};
constexpr RfcVector kRfc8032[] = {
    {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

// RFC 8410: PrivateKeyInfo { 0, id-Ed25519, OCTET STRING { OCTET STRING seed } }, and the
// SubjectPublicKeyInfo { id-Ed25519, BIT STRING public key }.
std::vector<uint8_t> pkcs8_of_seed(const char* seed_hex) {
    return unhex(std::string("302e020100300506032b657004220420") + seed_hex);
}
std::vector<uint8_t> spki_of(const char* public_key_hex) {
    return unhex(std::string("302a300506032b6570032100") + public_key_hex);
}

std::string pem_of(const std::vector<uint8_t>& der) {
    const unsigned char* p = der.data();
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
        d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size())), EVP_PKEY_free);
    REQUIRE(pkey != nullptr);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    REQUIRE(PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
    char* text = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &text);
    return std::string(text, static_cast<size_t>(n));
}

ErrorCode ed_sign_error(const PrivateKey& key, SignAlgorithm alg, std::span<const uint8_t> input) {
    try {
        (void)key.sign(alg, input);
    } catch (const KeychainError& e) {
        return e.code();
    }
    return ErrorCode::Ok;
}

}  // namespace

TEST_CASE("ed25519 is wire value 11 and key kind 5, and signs the message, not a digest",
          "[core][crypto][ed25519]") {
    REQUIRE(sign_algorithm_valid(11));
    REQUIRE_FALSE(sign_algorithm_valid(12));
    REQUIRE(static_cast<uint8_t>(SignAlgorithm::Ed25519) == 11);
    REQUIRE(static_cast<uint8_t>(KeyKind::Ed25519) == 5);
    REQUIRE(sign_algorithm_name(SignAlgorithm::Ed25519) == "ed25519");
    REQUIRE(key_kind_name(KeyKind::Ed25519) == "ed25519");
    REQUIRE(sign_algorithm_digest_size(SignAlgorithm::Ed25519) == 0);
    REQUIRE(sign_algorithm_signs_message(SignAlgorithm::Ed25519));
    REQUIRE_FALSE(sign_algorithm_signs_message(SignAlgorithm::RsaPkcs1Raw));
    REQUIRE_FALSE(sign_algorithm_is_rsa(SignAlgorithm::Ed25519));
    REQUIRE(sign_algorithm_fits(SignAlgorithm::Ed25519, KeyKind::Ed25519));
    for (KeyKind k : {KeyKind::Rsa, KeyKind::EcP256, KeyKind::EcP384, KeyKind::Aes256})
        REQUIRE_FALSE(sign_algorithm_fits(SignAlgorithm::Ed25519, k));
    for (uint8_t v = 1; v <= 10; ++v)
        REQUIRE_FALSE(sign_algorithm_fits(static_cast<SignAlgorithm>(v), KeyKind::Ed25519));
}

TEST_CASE("OpenSSL signs RFC 8032 test vectors 1-3 byte for byte and verifies them",
          "[core][crypto][ed25519]") {
    const CryptoBackend& backend = backend_named("openssl");
    for (const RfcVector& v : kRfc8032) {
        INFO(v.name);
        const auto der = pkcs8_of_seed(v.seed);
        const auto message = unhex(v.message);
        const auto expected = unhex(v.signature);
        for (const bool pem : {false, true}) {
            INFO((pem ? "PEM" : "DER"));
            const std::string pem_text = pem ? pem_of(der) : std::string();
            const auto key = pem ? backend.parse_private_key(core_test::as_bytes(pem_text))
                                 : backend.parse_private_key(der);
            REQUIRE(key->kind() == KeyKind::Ed25519);
            REQUIRE(key->bits() == 256);
            REQUIRE(key->public_key_der() == spki_of(v.public_key));
            REQUIRE(key->sign(SignAlgorithm::Ed25519, message) == expected);
        }
        const auto spki = spki_of(v.public_key);
        CHECK(backend.verify(spki, SignAlgorithm::Ed25519, message, expected));

        auto tampered_message = message;
        tampered_message.push_back(0x00);
        CHECK_FALSE(backend.verify(spki, SignAlgorithm::Ed25519, tampered_message, expected));
        auto tampered_sig = expected;
        tampered_sig[10] ^= 0x01;
        CHECK_FALSE(backend.verify(spki, SignAlgorithm::Ed25519, message, tampered_sig));
        CHECK_FALSE(backend.verify(spki, SignAlgorithm::Ed25519, message,
                                   std::span(expected).first(63)));
        // An Ed25519 public key never verifies another algorithm's signature.
        CHECK_FALSE(backend.verify(spki, SignAlgorithm::EcdsaSha256, std::vector<uint8_t>(32, 1), expected));
    }
}

TEST_CASE("a key as `openssl genpkey -algorithm ed25519` writes it signs what OpenSSL verifies",
          "[core][crypto][ed25519]") {
    const CryptoBackend& backend = backend_named("openssl");
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"),
                                                              EVP_PKEY_free);
    REQUIRE(pkey != nullptr);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    REQUIRE(PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
    char* text = nullptr;
    // Two statements: the order in which a call's arguments are evaluated is unspecified.
    const auto text_len = static_cast<size_t>(BIO_get_mem_data(bio.get(), &text));
    const std::string pem(text, text_len);
    REQUIRE(pem.find("-----BEGIN PRIVATE KEY-----") != std::string::npos);

    const auto key = backend.parse_private_key(core_test::as_bytes(pem));
    const int spki_len = i2d_PUBKEY(pkey.get(), nullptr);
    std::vector<uint8_t> spki(static_cast<size_t>(spki_len));
    unsigned char* w = spki.data();
    REQUIRE(i2d_PUBKEY(pkey.get(), &w) == spki_len);
    REQUIRE(key->public_key_der() == spki);

    const std::vector<uint8_t> message(kMaxEd25519MessageBytes, 0x5a);
    const auto sig = key->sign(SignAlgorithm::Ed25519, message);
    REQUIRE(sig.size() == 64);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    REQUIRE(EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, pkey.get(), nullptr) == 1);
    REQUIRE(EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), message.data(), message.size()) == 1);
}

TEST_CASE("Ed25519 and the other algorithms refuse each other's keys, and a long message is a bad request",
          "[core][crypto][ed25519]") {
    const CryptoBackend& openssl = backend_named("openssl");
    const auto ed = openssl.parse_private_key(pkcs8_of_seed(kRfc8032[1].seed));
    const std::vector<uint8_t> digest(32, 7);
    for (uint8_t v = 1; v <= 10; ++v) {
        INFO(sign_algorithm_name(static_cast<SignAlgorithm>(v)));
        const auto alg = static_cast<SignAlgorithm>(v);
        const size_t n = sign_algorithm_digest_size(alg) != 0 ? sign_algorithm_digest_size(alg) : 51;
        CHECK(ed_sign_error(*ed, alg, std::vector<uint8_t>(n, 7)) == ErrorCode::Unsupported);
    }
    CHECK(ed_sign_error(*ed, SignAlgorithm::Ed25519, std::vector<uint8_t>(kMaxEd25519MessageBytes + 1, 1)) ==
          ErrorCode::BadRequest);
    CHECK(ed_sign_error(*ed, SignAlgorithm::Ed25519, std::vector<uint8_t>(kMaxEd25519MessageBytes, 1)) ==
          ErrorCode::Ok);

    FOR_EACH_BACKEND(backend);
    for (const auto* g : {&core_test::rsa_key(2048), &core_test::ec_key(MBEDTLS_ECP_DP_SECP256R1),
                          &core_test::ec_key(MBEDTLS_ECP_DP_SECP384R1)}) {
        const auto key = backend.parse_private_key(g->private_der.span());
        INFO(key_kind_name(key->kind()));
        CHECK(ed_sign_error(*key, SignAlgorithm::Ed25519, digest) == ErrorCode::Unsupported);
        try {
            (void)key->sign(SignAlgorithm::Ed25519, digest);
        } catch (const KeychainError& e) {
            CHECK(std::string(e.what()).find("ed25519 does not fit") != std::string::npos);
        }
    }
}

TEST_CASE("the mbedtls backend refuses an Ed25519 key by name and verifies no Ed25519 signature",
          "[core][crypto][ed25519]") {
    const CryptoBackend& mbed = backend_named("mbedtls");
    const RfcVector& v = kRfc8032[2];
    const auto der = pkcs8_of_seed(v.seed);
    const std::string pem = pem_of(der);
    for (const bool as_pem : {false, true}) {
        INFO((as_pem ? "PEM" : "DER"));
        try {
            (void)(as_pem ? mbed.parse_private_key(core_test::as_bytes(pem)) : mbed.parse_private_key(der));
            FAIL("an Ed25519 key parsed with the mbedtls backend");
        } catch (const KeychainError& e) {
            CHECK(e.code() == ErrorCode::Unsupported);
            const std::string what = e.what();
            CHECK(what.find("Ed25519") != std::string::npos);
            CHECK(what.find("the mbedtls backend") != std::string::npos);
        }
    }
    // A valid signature (the RFC's) still does not verify: mbedTLS cannot check it.
    CHECK_FALSE(mbed.verify(spki_of(v.public_key), SignAlgorithm::Ed25519, unhex(v.message), unhex(v.signature)));
    // Other PKCS#8 keys it does not know still get the ordinary parse error.
    auto other = der;
    other[11] = 0x71;  // id-Ed448's last byte (1.3.101.113): not Ed25519
    CHECK(core_test::parse_error(mbed, other) == ErrorCode::BadRequest);
}

TEST_CASE("OpenSSL keeps the Ed25519 seed in its secure heap until the key is dropped",
          "[core][crypto][ed25519]") {
    const CryptoBackend& backend = backend_named("openssl");
    REQUIRE(CRYPTO_secure_malloc_initialized() == 1);
    const auto der = pkcs8_of_seed(kRfc8032[0].seed);
    const auto parse_and_sign = [&] {
        auto key = backend.parse_private_key(der);
        (void)key->sign(SignAlgorithm::Ed25519, std::vector<uint8_t>(5, 1));
        return key;
    };
    (void)parse_and_sign();
    const size_t before = CRYPTO_secure_used();
    auto key = parse_and_sign();
    const size_t held = CRYPTO_secure_used() - before;
    INFO(held << " bytes of the secure heap");
    REQUIRE(held >= 32);
    key.reset();
    REQUIRE(CRYPTO_secure_used() == before);
}
