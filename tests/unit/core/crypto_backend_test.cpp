// Each CryptoBackend (mbedTLS, OpenSSL): parsing, signing, OAEP and GCM, checked against mbedTLS
// used directly; every test runs once per backend.
#include <mbedtls/md.h>
#include <mbedtls/rsa.h>

#include <catch2/catch.hpp>

#include <array>
#include <string>
#include <thread>

#include "backends.h"
#include "core/crypto_backend.h"
#include "core/error.h"
#include "test_bytes.h"
#include "generated_keys.h"
#include "test_keys.h"

using namespace keychaind;
using keychaind::core_test::as_bytes;
using keychaind::core_test::parse_error;

namespace {

struct SignCase {
    SignAlgorithm alg;
    mbedtls_md_type_t md;
    size_t digest_size;
};

constexpr SignCase kPkcs1Cases[] = {
    {SignAlgorithm::RsaPkcs1Sha256, MBEDTLS_MD_SHA256, 32},
    {SignAlgorithm::RsaPkcs1Sha384, MBEDTLS_MD_SHA384, 48},
    {SignAlgorithm::RsaPkcs1Sha512, MBEDTLS_MD_SHA512, 64},
};
constexpr SignCase kPssCases[] = {
    {SignAlgorithm::RsaPssSha256, MBEDTLS_MD_SHA256, 32},
    {SignAlgorithm::RsaPssSha384, MBEDTLS_MD_SHA384, 48},
    {SignAlgorithm::RsaPssSha512, MBEDTLS_MD_SHA512, 64},
};
constexpr SignCase kEcdsaCases[] = {
    {SignAlgorithm::EcdsaSha256, MBEDTLS_MD_SHA256, 32},
    {SignAlgorithm::EcdsaSha384, MBEDTLS_MD_SHA384, 48},
    {SignAlgorithm::EcdsaSha512, MBEDTLS_MD_SHA512, 64},
};

std::vector<uint8_t> digest_of(mbedtls_md_type_t md, std::string_view message) {
    const mbedtls_md_info_t* info = mbedtls_md_info_from_type(md);
    std::vector<uint8_t> out(mbedtls_md_get_size(info));
    REQUIRE(mbedtls_md(info, reinterpret_cast<const uint8_t*>(message.data()), message.size(),
                       out.data()) == 0);
    return out;
}

ErrorCode sign_error(const PrivateKey& key, SignAlgorithm alg, std::span<const uint8_t> digest) {
    try {
        (void)key.sign(alg, digest);
    } catch (const KeychainError& e) {
        return e.code();
    }
    return ErrorCode::Ok;
}

std::unique_ptr<PrivateKey> parsed(const CryptoBackend& backend, const core_test::GeneratedKey& g) {
    return backend.parse_private_key(g.private_der.span());
}

}  // namespace

TEST_CASE("generated RSA and EC keys parse with their kind, size and public key", "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    const auto rsa = parsed(backend, core_test::rsa_key(2048));
    REQUIRE(rsa->kind() == KeyKind::Rsa);
    REQUIRE(rsa->bits() == 2048);
    REQUIRE(rsa->public_key_der() == core_test::rsa_key(2048).spki_der);

    const auto p256 = parsed(backend, core_test::ec_key(MBEDTLS_ECP_DP_SECP256R1));
    REQUIRE(p256->kind() == KeyKind::EcP256);
    REQUIRE(p256->bits() == 256);
    REQUIRE(p256->public_key_der() == core_test::ec_key(MBEDTLS_ECP_DP_SECP256R1).spki_der);

    const auto p384 = parsed(backend, core_test::ec_key(MBEDTLS_ECP_DP_SECP384R1));
    REQUIRE(p384->kind() == KeyKind::EcP384);
    REQUIRE(p384->bits() == 384);
    REQUIRE(p384->public_key_der() == core_test::ec_key(MBEDTLS_ECP_DP_SECP384R1).spki_der);
}

TEST_CASE("a PEM private key parses to the same key as its DER", "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    for (const auto* g : {&core_test::rsa_key(2048), &core_test::ec_key(MBEDTLS_ECP_DP_SECP384R1)}) {
        REQUIRE(g->private_pem.view().starts_with("-----BEGIN"));
        const auto key = backend.parse_private_key(g->private_pem.span());
        REQUIRE(key->public_key_der() == g->spki_der);
    }
}

TEST_CASE("RSA PKCS#1 v1.5 signatures verify with the backend and with mbedtls_pk_verify",
          "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    const auto& g = core_test::rsa_key(2048);
    const auto key = parsed(backend, g);
    for (const SignCase& c : kPkcs1Cases) {
        INFO(sign_algorithm_name(c.alg));
        const auto digest = digest_of(c.md, "hello handshake");
        REQUIRE(digest.size() == c.digest_size);
        auto sig = key->sign(c.alg, digest);
        REQUIRE(sig.size() == 256);
        REQUIRE(key->sign(c.alg, digest) == sig);  // PKCS#1 v1.5 is deterministic
        REQUIRE(backend.verify(g.spki_der, c.alg, digest, sig));
        auto pub = core_test::public_key_context(g.spki_der);
        REQUIRE(mbedtls_pk_verify(&pub->pk, c.md, digest.data(), digest.size(), sig.data(),
                                  sig.size()) == 0);
        sig[100] ^= 0x01;
        REQUIRE_FALSE(backend.verify(g.spki_der, c.alg, digest, sig));
    }
}

TEST_CASE("RSA-PSS signatures use MGF1 with the same hash and a salt of the hash length",
          "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    const auto& g = core_test::rsa_key(2048);
    const auto key = parsed(backend, g);
    for (const SignCase& c : kPssCases) {
        INFO(sign_algorithm_name(c.alg));
        const auto digest = digest_of(c.md, "hello handshake");
        auto sig = key->sign(c.alg, digest);
        REQUIRE(sig.size() == 256);
        REQUIRE(key->sign(c.alg, digest) != sig);  // a random salt each time
        REQUIRE(backend.verify(g.spki_der, c.alg, digest, sig));
        auto pub = core_test::public_key_context(g.spki_der);
        const mbedtls_pk_rsassa_pss_options exact{c.md, static_cast<int>(c.digest_size)};
        REQUIRE(mbedtls_pk_verify_ext(MBEDTLS_PK_RSASSA_PSS, &exact, &pub->pk, c.md, digest.data(),
                                      digest.size(), sig.data(), sig.size()) == 0);
        sig[0] ^= 0x01;
        REQUIRE_FALSE(backend.verify(g.spki_der, c.alg, digest, sig));
    }
}

TEST_CASE("one RSA key signs PKCS#1 v1.5 after PSS and after OAEP (the padding mode is per call)",
          "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    // A TLS server mixes the schemes on one key; mbedTLS keeps the padding in the context.
    const auto& g = core_test::rsa_key(2048);
    const auto key = parsed(backend, g);
    const auto digest = digest_of(MBEDTLS_MD_SHA256, "mixed schemes");
    const auto before = key->sign(SignAlgorithm::RsaPkcs1Sha256, digest);
    (void)key->sign(SignAlgorithm::RsaPssSha256, digest);
    REQUIRE(key->sign(SignAlgorithm::RsaPkcs1Sha256, digest) == before);
    auto digest_info = core_test::unhex("3031300d060960864801650304020105000420");
    digest_info.insert(digest_info.end(), digest.begin(), digest.end());
    REQUIRE(key->sign(SignAlgorithm::RsaPkcs1Raw, digest_info) == before);
    (void)sign_error(*key, SignAlgorithm::RsaPkcs1Raw, {});
    REQUIRE_THROWS_AS(key->decrypt(DecryptAlgorithm::RsaOaepSha256, std::vector<uint8_t>(256, 1)),
                      KeychainError);
    REQUIRE(key->sign(SignAlgorithm::RsaPkcs1Sha256, digest) == before);
}

TEST_CASE("rsa-pkcs1-raw over a SHA-256 DigestInfo equals rsa-pkcs1-sha256", "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    const auto& g = core_test::rsa_key(2048);
    const auto key = parsed(backend, g);
    const auto digest = digest_of(MBEDTLS_MD_SHA256, "tls 1.2 handshake");
    auto digest_info = core_test::unhex("3031300d060960864801650304020105000420");
    digest_info.insert(digest_info.end(), digest.begin(), digest.end());
    const auto raw = key->sign(SignAlgorithm::RsaPkcs1Raw, digest_info);
    REQUIRE(raw == key->sign(SignAlgorithm::RsaPkcs1Sha256, digest));
    REQUIRE(backend.verify(g.spki_der, SignAlgorithm::RsaPkcs1Raw, digest_info, raw));
    auto pub = core_test::public_key_context(g.spki_der);
    REQUIRE(mbedtls_pk_verify(&pub->pk, MBEDTLS_MD_SHA256, digest.data(), digest.size(), raw.data(),
                              raw.size()) == 0);

    // TLS 1.1 style MD5||SHA-1 (36 bytes) and the k-11 maximum are accepted; more is not.
    REQUIRE(key->sign(SignAlgorithm::RsaPkcs1Raw, std::vector<uint8_t>(36, 0x42)).size() == 256);
    REQUIRE(key->sign(SignAlgorithm::RsaPkcs1Raw, std::vector<uint8_t>(245, 0x42)).size() == 256);
    REQUIRE(sign_error(*key, SignAlgorithm::RsaPkcs1Raw, std::vector<uint8_t>(246, 0x42)) ==
            ErrorCode::BadRequest);
    REQUIRE(sign_error(*key, SignAlgorithm::RsaPkcs1Raw, {}) == ErrorCode::BadRequest);
}

TEST_CASE("sign_into writes the signature into the caller's buffer and refuses one too small for the key",
          "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    const auto& g = core_test::rsa_key(2048);
    const auto key = parsed(backend, g);
    const auto digest = digest_of(MBEDTLS_MD_SHA256, "into a fixed buffer");
    std::array<uint8_t, 256> exact{};
    REQUIRE(key->sign_into(SignAlgorithm::RsaPkcs1Sha256, digest, exact) == 256);
    REQUIRE(backend.verify(g.spki_der, SignAlgorithm::RsaPkcs1Sha256, digest, exact));
    REQUIRE(key->sign(SignAlgorithm::RsaPkcs1Sha256, digest) == std::vector<uint8_t>(exact.begin(), exact.end()));
    std::array<uint8_t, 255> short_by_one{};
    try {
        (void)key->sign_into(SignAlgorithm::RsaPkcs1Sha256, digest, short_by_one);
        FAIL("a 255-byte buffer took an RSA-2048 signature");
    } catch (const KeychainError& e) {
        REQUIRE(e.code() == ErrorCode::Internal);
        REQUIRE(std::string(e.what()).find("does not fit a buffer of 255") != std::string::npos);
    }
    const auto ec = parsed(backend, core_test::ec_key(MBEDTLS_ECP_DP_SECP384R1));
    std::array<uint8_t, PrivateKey::kMaxSignatureSize> room{};
    const size_t len = ec->sign_into(SignAlgorithm::EcdsaSha256, digest, room);
    REQUIRE(len > 8);
    REQUIRE(len <= 104);
    REQUIRE(backend.verify(core_test::ec_key(MBEDTLS_ECP_DP_SECP384R1).spki_der, SignAlgorithm::EcdsaSha256, digest,
                           std::span<const uint8_t>(room).first(len)));
}

TEST_CASE("ECDSA signatures on P-256 and P-384 verify with the backend and with mbedtls_pk_verify",
          "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    const auto curve = GENERATE(MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_SECP384R1);
    const auto& g = core_test::ec_key(curve);
    const auto key = parsed(backend, g);
    for (const SignCase& c : kEcdsaCases) {
        INFO(key_kind_name(key->kind()) << " " << sign_algorithm_name(c.alg));
        const auto digest = digest_of(c.md, "hello handshake");
        auto sig = key->sign(c.alg, digest);
        REQUIRE(sig.size() > 8);
        REQUIRE(sig[0] == 0x30);  // DER SEQUENCE { r, s }
        REQUIRE(sig.size() <= (curve == MBEDTLS_ECP_DP_SECP256R1 ? 72u : 104u));
        REQUIRE(backend.verify(g.spki_der, c.alg, digest, sig));
        auto pub = core_test::public_key_context(g.spki_der);
        REQUIRE(mbedtls_pk_verify(&pub->pk, c.md, digest.data(), digest.size(), sig.data(),
                                  sig.size()) == 0);
        auto other_digest = digest;
        other_digest[0] ^= 0x01;
        REQUIRE_FALSE(backend.verify(g.spki_der, c.alg, other_digest, sig));
        sig[sig.size() - 1] ^= 0x01;
        REQUIRE_FALSE(backend.verify(g.spki_der, c.alg, digest, sig));
    }
}

TEST_CASE("a digest of the wrong length is a bad request", "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    const auto rsa = parsed(backend, core_test::rsa_key(2048));
    const auto ec = parsed(backend, core_test::ec_key(MBEDTLS_ECP_DP_SECP256R1));
    for (const auto& cases : {kPkcs1Cases, kPssCases}) {
        for (const SignCase& c : std::span<const SignCase>(cases, 3)) {
            INFO(sign_algorithm_name(c.alg));
            for (size_t n : {size_t{0}, c.digest_size - 1, c.digest_size + 1, size_t{20}})
                REQUIRE(sign_error(*rsa, c.alg, std::vector<uint8_t>(n, 1)) == ErrorCode::BadRequest);
        }
    }
    for (const SignCase& c : kEcdsaCases) {
        INFO(sign_algorithm_name(c.alg));
        for (size_t n : {size_t{0}, c.digest_size - 1, c.digest_size + 1})
            REQUIRE(sign_error(*ec, c.alg, std::vector<uint8_t>(n, 1)) == ErrorCode::BadRequest);
    }
    try {
        (void)rsa->sign(SignAlgorithm::RsaPkcs1Sha256, std::vector<uint8_t>(20, 1));
    } catch (const KeychainError& e) {
        REQUIRE(std::string(e.what()) == "rsa-pkcs1-sha256 needs a 32-byte digest, got 20");
    }
}

TEST_CASE("an algorithm for the other key type is unsupported", "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    const auto rsa = parsed(backend, core_test::rsa_key(2048));
    const auto ec = parsed(backend, core_test::ec_key(MBEDTLS_ECP_DP_SECP384R1));
    for (const SignCase& c : kEcdsaCases)
        REQUIRE(sign_error(*rsa, c.alg, std::vector<uint8_t>(c.digest_size, 1)) ==
                ErrorCode::Unsupported);
    for (const auto& cases : {kPkcs1Cases, kPssCases})
        for (const SignCase& c : std::span<const SignCase>(cases, 3))
            REQUIRE(sign_error(*ec, c.alg, std::vector<uint8_t>(c.digest_size, 1)) ==
                    ErrorCode::Unsupported);
    REQUIRE(sign_error(*ec, SignAlgorithm::RsaPkcs1Raw, std::vector<uint8_t>(51, 1)) ==
            ErrorCode::Unsupported);
    try {
        (void)rsa->sign(SignAlgorithm::EcdsaSha256, std::vector<uint8_t>(32, 1));
    } catch (const KeychainError& e) {
        REQUIRE(std::string(e.what()) == "ecdsa-sha256 does not fit a rsa key");
    }
    REQUIRE_THROWS_MATCHES(ec->decrypt(DecryptAlgorithm::RsaOaepSha256, std::vector<uint8_t>(48, 1)),
                           KeychainError, Catch::Matchers::Message("decrypt needs an RSA key"));
}

TEST_CASE("RSA keys under 2048 bits and EC keys on other curves are unsupported", "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    REQUIRE(parse_error(backend, core_test::rsa_key(1024).private_der.span()) ==
            ErrorCode::Unsupported);
    try {
        (void)backend.parse_private_key(core_test::rsa_key(1024).private_pem.span());
        FAIL("RSA-1024 was accepted");
    } catch (const KeychainError& e) {
        REQUIRE(std::string(e.what()) == "RSA key of 1024 bits; only 2048 to 4096 are accepted");
    }
    REQUIRE(parse_error(backend, core_test::ec_key(MBEDTLS_ECP_DP_SECP256K1).private_der.span()) ==
            ErrorCode::Unsupported);
    REQUIRE(parse_error(backend, core_test::ec_key(MBEDTLS_ECP_DP_SECP521R1).private_der.span()) ==
            ErrorCode::Unsupported);
}

TEST_CASE("input that is not a private key is a bad request", "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    REQUIRE(parse_error(backend, as_bytes("not a key")) == ErrorCode::BadRequest);
    REQUIRE(parse_error(backend, as_bytes("-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                          "-----END PRIVATE KEY-----\n")) == ErrorCode::BadRequest);
    REQUIRE(parse_error(backend, {}) == ErrorCode::BadRequest);
    // A public key is not a private key.
    REQUIRE(parse_error(backend, core_test::rsa_key(2048).spki_der) == ErrorCode::BadRequest);
    const auto& der = core_test::ec_key(MBEDTLS_ECP_DP_SECP256R1).private_der;
    REQUIRE(parse_error(backend, der.span().first(der.size() - 1)) == ErrorCode::BadRequest);
}

TEST_CASE("RSA-OAEP with SHA-1 and SHA-256 decrypts what mbedtls_rsa_rsaes_oaep_encrypt wrote",
          "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    const auto& g = core_test::rsa_key(2048);
    const auto key = parsed(backend, g);
    struct OaepCase {
        DecryptAlgorithm alg;
        mbedtls_md_type_t md;
        size_t max_message;  // k - 2*hLen - 2
    };
    for (const OaepCase& c : {OaepCase{DecryptAlgorithm::RsaOaepSha1, MBEDTLS_MD_SHA1, 214},
                              OaepCase{DecryptAlgorithm::RsaOaepSha256, MBEDTLS_MD_SHA256, 190}}) {
        INFO("OAEP hash " << static_cast<int>(c.md));
        for (size_t n : {size_t{1}, size_t{32}, c.max_message}) {
            const auto message = core_test::counting_bytes(0x61, n);
            auto pub = core_test::public_key_context(g.spki_der);
            mbedtls_rsa_context* rsa = mbedtls_pk_rsa(pub->pk);
            mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, c.md);
            std::vector<uint8_t> ct(mbedtls_rsa_get_len(rsa));
            REQUIRE(mbedtls_rsa_rsaes_oaep_encrypt(rsa, test::random_bytes, nullptr, MBEDTLS_RSA_PUBLIC,
                                                   nullptr, 0, message.size(), message.data(),
                                                   ct.data()) == 0);
            const SecretBytes plain = key->decrypt(c.alg, ct);
            REQUIRE(plain.size() == n);
            REQUIRE(plain.equals(message));

            const auto other = c.alg == DecryptAlgorithm::RsaOaepSha1 ? DecryptAlgorithm::RsaOaepSha256
                                                                      : DecryptAlgorithm::RsaOaepSha1;
            REQUIRE_THROWS_MATCHES(key->decrypt(other, ct), KeychainError,
                                   Catch::Matchers::Message("RSA-OAEP decryption failed"));
            ct[5] ^= 0x01;
            REQUIRE_THROWS_MATCHES(key->decrypt(c.alg, ct), KeychainError,
                                   Catch::Matchers::Message("RSA-OAEP decryption failed"));
        }
    }
}

TEST_CASE("RSA-OAEP ciphertext must be exactly the modulus size", "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    const auto key = parsed(backend, core_test::rsa_key(2048));
    for (size_t n : {0u, 255u, 257u}) {
        try {
            (void)key->decrypt(DecryptAlgorithm::RsaOaepSha256, std::vector<uint8_t>(n, 1));
            FAIL("a " << n << "-byte ciphertext was accepted");
        } catch (const KeychainError& e) {
            REQUIRE(e.code() == ErrorCode::BadRequest);
            REQUIRE(std::string(e.what()) ==
                    "RSA-OAEP ciphertext must be 256 bytes, got " + std::to_string(n));
        }
    }
}

TEST_CASE("verify refuses a public key that does not parse, a raw signature of the wrong size, "
          "a digest of the wrong size and an algorithm of the other key type", "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    const auto& g = core_test::rsa_key(2048);
    const auto key = parsed(backend, g);
    const auto digest = digest_of(MBEDTLS_MD_SHA256, "x");
    const auto sig = key->sign(SignAlgorithm::RsaPkcs1Sha256, digest);
    REQUIRE_FALSE(backend.verify(as_bytes("junk"), SignAlgorithm::RsaPkcs1Sha256, digest, sig));
    REQUIRE_FALSE(backend.verify(g.spki_der, SignAlgorithm::RsaPkcs1Raw, digest,
                                 std::span<const uint8_t>(sig).first(255)));
    REQUIRE_FALSE(backend.verify(core_test::ec_key(MBEDTLS_ECP_DP_SECP256R1).spki_der,
                                 SignAlgorithm::RsaPkcs1Raw, digest, sig));
    REQUIRE_FALSE(backend.verify(g.spki_der, SignAlgorithm::RsaPssSha256, digest, sig));
    REQUIRE(backend.verify(g.spki_der, SignAlgorithm::RsaPkcs1Sha256, digest, sig));
    // A shorter digest must not be read past its end (the ASan build checks), nor verify.
    REQUIRE_FALSE(backend.verify(g.spki_der, SignAlgorithm::RsaPkcs1Sha256,
                                 std::span<const uint8_t>(digest).first(20), sig));
    // A PKCS#1 v1.5 signature is no ECDSA signature, even over the same digest.
    REQUIRE_FALSE(backend.verify(g.spki_der, SignAlgorithm::EcdsaSha256, digest, sig));
    const auto& ec = core_test::ec_key(MBEDTLS_ECP_DP_SECP256R1);
    const auto ec_sig = parsed(backend, ec)->sign(SignAlgorithm::EcdsaSha256, digest);
    REQUIRE(backend.verify(ec.spki_der, SignAlgorithm::EcdsaSha256, digest, ec_sig));
    REQUIRE_FALSE(backend.verify(ec.spki_der, SignAlgorithm::RsaPkcs1Sha256, digest, ec_sig));
}

TEST_CASE("the backend's AES-256-GCM refuses a wrong tag and zeroes the output", "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    const auto key = core_test::counting_bytes(0, 32);
    const auto nonce = core_test::counting_bytes(0xc0, 12);
    const auto plain = core_test::counting_bytes(0xa0, 40);
    std::vector<uint8_t> ct(40), tag(16), back(40, 0xff);
    backend.aes256_gcm_encrypt(key, nonce, as_bytes("aad"), plain, ct, tag);
    REQUIRE(backend.aes256_gcm_decrypt(key, nonce, as_bytes("aad"), ct, tag, back));
    REQUIRE(back == plain);
    tag[15] ^= 1;
    REQUIRE_FALSE(backend.aes256_gcm_decrypt(key, nonce, as_bytes("aad"), ct, tag, back));
    REQUIRE(back == std::vector<uint8_t>(40, 0));
}

TEST_CASE("one key signs from eight threads at once, switching algorithms, and every signature verifies",
          "[core][crypto]") {
    // The OpenSSL backend keeps a few initialised contexts per key, each for one thread at a time:
    // more threads than contexts, and algorithm changes, must still give only good signatures.
    FOR_EACH_BACKEND(backend);
    const auto& g = core_test::ec_key(MBEDTLS_ECP_DP_SECP256R1);
    const auto key = parsed(backend, g);
    struct Made {
        SignAlgorithm alg;
        std::vector<uint8_t> digest, sig;
    };
    constexpr size_t kThreads = 8, kEach = 12;
    std::vector<std::vector<Made>> made(kThreads);
    for (size_t t = 0; t < kThreads; ++t)  // digests here: Catch's assertions are not thread-safe
        for (size_t i = 0; i < kEach; ++i) {
            const SignCase& c = kEcdsaCases[(t + i) % 3];
            made[t].push_back({c.alg, digest_of(c.md, "message " + std::to_string(t) + "/" + std::to_string(i)), {}});
        }
    std::vector<std::thread> threads;
    for (auto& per_thread : made)
        threads.emplace_back([&key, &per_thread] {
            for (Made& m : per_thread) m.sig = key->sign(m.alg, m.digest);
        });
    for (auto& th : threads) th.join();
    for (const auto& per_thread : made)
        for (const Made& m : per_thread) REQUIRE(backend.verify(g.spki_der, m.alg, m.digest, m.sig));
}

TEST_CASE("AES-256-GCM with two keys in turn on one thread uses each call's own key and nonce",
          "[core][crypto]") {
    // The OpenSSL backend re-keys one context per thread: a stale key or GCM state would show here.
    FOR_EACH_BACKEND(backend);
    const auto key_a = core_test::counting_bytes(0, 32);
    const auto key_b = core_test::counting_bytes(1, 32);
    const auto nonce = core_test::counting_bytes(0xc0, 12);
    const auto plain = core_test::counting_bytes(0xa0, 32);
    std::vector<uint8_t> ct_a(32), tag_a(16), ct_b(32), tag_b(16), again(32), tag_again(16), back(32);
    backend.aes256_gcm_encrypt(key_a, nonce, as_bytes("aad"), plain, ct_a, tag_a);
    backend.aes256_gcm_encrypt(key_b, nonce, as_bytes("aad"), plain, ct_b, tag_b);
    REQUIRE(ct_a != ct_b);
    backend.aes256_gcm_encrypt(key_a, nonce, as_bytes("aad"), plain, again, tag_again);
    REQUIRE(again == ct_a);
    REQUIRE(tag_again == tag_a);
    REQUIRE_FALSE(backend.aes256_gcm_decrypt(key_b, nonce, as_bytes("aad"), ct_a, tag_a, back));
    REQUIRE(backend.aes256_gcm_decrypt(key_a, nonce, as_bytes("aad"), ct_a, tag_a, back));
    REQUIRE(back == plain);
    REQUIRE(backend.aes256_gcm_decrypt(key_b, nonce, as_bytes("aad"), ct_b, tag_b, back));
    REQUIRE(back == plain);
    REQUIRE_FALSE(backend.aes256_gcm_decrypt(key_a, nonce, as_bytes("aad"), ct_b, tag_b, back));
}
