// The two CryptoBackends against each other: each verifies and decrypts what the other made,
// reads the same key and certificate encodings to the same bytes; and the build-time choice.
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <thread>

#include "backends.h"
#include "core/error.h"
#include "core/openssl_types.h"
#include "generated_keys.h"
#include "test_bytes.h"
#include "test_keys.h"

using namespace keychaind;
using core_test::as_bytes;
using core_test::backend_named;
using core_test::parse_error;

namespace {

constexpr SignAlgorithm kRsaAlgorithms[] = {
    SignAlgorithm::RsaPkcs1Sha256, SignAlgorithm::RsaPkcs1Sha384, SignAlgorithm::RsaPkcs1Sha512,
    SignAlgorithm::RsaPssSha256,   SignAlgorithm::RsaPssSha384,   SignAlgorithm::RsaPssSha512,
    SignAlgorithm::RsaPkcs1Raw,
};
constexpr SignAlgorithm kEcdsaAlgorithms[] = {SignAlgorithm::EcdsaSha256, SignAlgorithm::EcdsaSha384,
                                              SignAlgorithm::EcdsaSha512};

// A digest of the algorithm's size (any bytes are a digest), or a SHA-256 DigestInfo for raw.
std::vector<uint8_t> input_for(SignAlgorithm alg) {
    if (alg != SignAlgorithm::RsaPkcs1Raw)
        return core_test::counting_bytes(0x30, sign_algorithm_digest_size(alg));
    auto digest_info = core_test::unhex("3031300d060960864801650304020105000420");
    const auto digest = core_test::counting_bytes(0x30, 32);
    digest_info.insert(digest_info.end(), digest.begin(), digest.end());
    return digest_info;
}

bool is_pkcs1_v15(SignAlgorithm alg) {
    return alg == SignAlgorithm::RsaPkcs1Sha256 || alg == SignAlgorithm::RsaPkcs1Sha384 ||
           alg == SignAlgorithm::RsaPkcs1Sha512 || alg == SignAlgorithm::RsaPkcs1Raw;
}

std::string pem_of(const char* label, const std::vector<uint8_t>& der) {
    const std::string b64 = test::base64(der);
    std::string out = std::string("-----BEGIN ") + label + "-----\n";
    for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
    return out + "-----END " + label + "-----\n";
}

// The key written encrypted under a passphrase, by OpenSSL on the test's side.
enum class Encrypted { Pkcs8Pem, Pkcs8Der, LegacyPem };
std::string encrypted_key(const test::TestIdentity& id, Encrypted how) {
    const unsigned char* p = id.key_der_legacy.data();
    const ossl::Pkey pkey(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(id.key_der_legacy.size())));
    REQUIRE(pkey);
    const ossl::Bio bio(BIO_new(BIO_s_mem()));
    char pass[] = "correct horse";
    int rc = 0;
    switch (how) {
        case Encrypted::Pkcs8Pem:
            rc = PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey.get(), EVP_aes_256_cbc(), pass, 13,
                                               nullptr, nullptr);
            break;
        case Encrypted::Pkcs8Der:
            rc = i2d_PKCS8PrivateKey_bio(bio.get(), pkey.get(), EVP_aes_256_cbc(), pass, 13, nullptr,
                                         nullptr);
            break;
        case Encrypted::LegacyPem:
            rc = PEM_write_bio_PrivateKey_traditional(bio.get(), pkey.get(), EVP_aes_256_cbc(),
                                                      reinterpret_cast<unsigned char*>(pass), 13,
                                                      nullptr, nullptr);
            break;
    }
    REQUIRE(rc == 1);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(n));
}

}  // namespace

TEST_CASE("crypto_backend() is the one KEYCHAIND_CRYPTO_BACKEND names, and other names give none",
          "[core][crypto]") {
    REQUIRE(&crypto_backend() == crypto_backend_named(KEYCHAIND_CRYPTO_BACKEND_NAME));
    REQUIRE(crypto_backend_named("mbedtls") != crypto_backend_named("openssl"));
    REQUIRE(crypto_backend_named("") == nullptr);
    REQUIRE(crypto_backend_named("OpenSSL") == nullptr);
    REQUIRE(crypto_backend_named("boringssl") == nullptr);
}

TEST_CASE("each backend names its library and the library's major.minor version (STATUS shows it)",
          "[core][crypto]") {
    REQUIRE(backend_named("mbedtls").name() == "mbedtls-2.28");
    const std::string openssl(backend_named("openssl").name());
    REQUIRE(openssl.starts_with("openssl-3."));
    REQUIRE(std::count(openssl.begin(), openssl.end(), '.') == 1);
}

TEST_CASE("a signature from either backend verifies with the other, and PKCS#1 v1.5 ones are identical",
          "[core][crypto]") {
    const CryptoBackend& mbed = backend_named("mbedtls");
    const CryptoBackend& ossl = backend_named("openssl");
    struct KeyCase {
        const core_test::GeneratedKey* key;
        std::span<const SignAlgorithm> algorithms;
    };
    for (const KeyCase& k : {KeyCase{&core_test::rsa_key(2048), kRsaAlgorithms},
                             KeyCase{&core_test::ec_key(MBEDTLS_ECP_DP_SECP256R1), kEcdsaAlgorithms},
                             KeyCase{&core_test::ec_key(MBEDTLS_ECP_DP_SECP384R1), kEcdsaAlgorithms}}) {
        const auto by_mbed = mbed.parse_private_key(k.key->private_der.span());
        const auto by_ossl = ossl.parse_private_key(k.key->private_der.span());
        for (const SignAlgorithm alg : k.algorithms) {
            INFO(key_kind_name(by_mbed->kind()) << " " << sign_algorithm_name(alg));
            const auto input = input_for(alg);
            const auto sig_mbed = by_mbed->sign(alg, input);
            const auto sig_ossl = by_ossl->sign(alg, input);
            REQUIRE(ossl.verify(k.key->spki_der, alg, input, sig_mbed));
            REQUIRE(mbed.verify(k.key->spki_der, alg, input, sig_ossl));
            REQUIRE(test::signature_verifies(k.key->spki_der, alg, input, sig_ossl));
            if (is_pkcs1_v15(alg)) REQUIRE(sig_mbed == sig_ossl);
        }
    }
}

TEST_CASE("AES-256-GCM output is the same from both backends and each decrypts the other's",
          "[core][crypto]") {
    const CryptoBackend& mbed = backend_named("mbedtls");
    const CryptoBackend& ossl = backend_named("openssl");
    const auto key = core_test::counting_bytes(0x11, 32);
    const auto nonce = core_test::counting_bytes(0x77, 12);
    for (const size_t size : {size_t{0}, size_t{1}, size_t{16}, size_t{33}, size_t{1000}}) {
        for (const std::string_view aad : {std::string_view(), std::string_view("db:users")}) {
            INFO(size << "-byte plaintext, " << aad.size() << "-byte AAD");
            const auto plain = core_test::counting_bytes(0x5a, size);
            std::vector<uint8_t> ct_mbed(size), tag_mbed(16), ct_ossl(size), tag_ossl(16);
            mbed.aes256_gcm_encrypt(key, nonce, as_bytes(aad), plain, ct_mbed, tag_mbed);
            ossl.aes256_gcm_encrypt(key, nonce, as_bytes(aad), plain, ct_ossl, tag_ossl);
            REQUIRE(ct_mbed == ct_ossl);
            REQUIRE(tag_mbed == tag_ossl);
            std::vector<uint8_t> back(size, 0xee);
            REQUIRE(ossl.aes256_gcm_decrypt(key, nonce, as_bytes(aad), ct_mbed, tag_mbed, back));
            REQUIRE(back == plain);
            std::fill(back.begin(), back.end(), 0xee);
            REQUIRE(mbed.aes256_gcm_decrypt(key, nonce, as_bytes(aad), ct_ossl, tag_ossl, back));
            REQUIRE(back == plain);
        }
    }
}

TEST_CASE("both backends read PKCS#8, PKCS#1 and SEC1 keys, PEM or DER, to the same public key",
          "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    for (const KeyKind kind : {KeyKind::Rsa, KeyKind::EcP256, KeyKind::EcP384}) {
        INFO(key_kind_name(kind));
        const auto id = test::make_identity(kind);
        for (const std::string& pem : {id.key_pem_pkcs8, id.key_pem_legacy,
                                       // openssl ecparam -genkey writes the curve first
                                       std::string("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n"
                                                   "-----END EC PARAMETERS-----\n") + id.key_pem_legacy,
                                       id.cert_pem + id.key_pem_pkcs8}) {
            const auto key = backend.parse_private_key(as_bytes(pem));
            REQUIRE(key->kind() == kind);
            REQUIRE(key->public_key_der() == id.spki_der);
        }
        REQUIRE(backend.parse_private_key(id.key_der_legacy)->public_key_der() == id.spki_der);
    }
}

TEST_CASE("an encrypted private key is a bad request: the daemon has no passphrase for it",
          "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    const auto id = test::make_identity(KeyKind::EcP256);
    for (const Encrypted how : {Encrypted::Pkcs8Pem, Encrypted::Pkcs8Der, Encrypted::LegacyPem}) {
        INFO("encoding " << static_cast<int>(how));
        REQUIRE(parse_error(backend, as_bytes(encrypted_key(id, how))) == ErrorCode::BadRequest);
    }
}

TEST_CASE("a certificate chain parses leaf first, to the same DER and public key in both backends",
          "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    const auto ca = test::make_identity(KeyKind::EcP384, 2048, "parity CA");
    const auto leaf = test::make_identity(KeyKind::Rsa, 2048, "parity leaf");
    const std::string leaf_pem = test::issue_certificate(leaf, ca, "parity leaf");
    const auto chain = backend.parse_certificates(as_bytes(leaf_pem + ca.cert_pem));
    REQUIRE(chain.size() == 2);
    REQUIRE(chain[1] == ca.cert_der);
    REQUIRE(chain[0] == backend_named("mbedtls").parse_certificates(as_bytes(leaf_pem)).at(0));
    REQUIRE(backend.certificate_public_key(chain[0]) == leaf.spki_der);
    REQUIRE(backend.certificate_public_key(chain[1]) == ca.spki_der);
    REQUIRE(backend.parse_certificates(ca.cert_der) == std::vector<std::vector<uint8_t>>{ca.cert_der});

    auto cut = ca.cert_der;
    cut.resize(cut.size() - 10);
    REQUIRE_THROWS_MATCHES(backend.parse_certificates(as_bytes(leaf_pem + pem_of("CERTIFICATE", cut))),
                           KeychainError,
                           Catch::Matchers::Message("1 certificate(s) in the chain do not parse"));
    for (const std::string& bad : {pem_of("CERTIFICATE", cut), std::string("no PEM at all"),
                                  pem_of("PUBLIC KEY", ca.spki_der)}) {
        try {
            (void)backend.parse_certificates(as_bytes(bad));
            FAIL("accepted: " << bad);
        } catch (const KeychainError& e) {
            REQUIRE(e.code() == ErrorCode::BadRequest);
        }
    }
    REQUIRE_THROWS_AS(backend.certificate_public_key(cut), KeychainError);
}

TEST_CASE("one parsed key signs from several threads at once", "[core][crypto]") {
    FOR_EACH_BACKEND(backend);
    for (const auto* g : {&core_test::rsa_key(2048), &core_test::ec_key(MBEDTLS_ECP_DP_SECP256R1)}) {
        const auto key = backend.parse_private_key(g->private_der.span());
        const SignAlgorithm alg =
            key->kind() == KeyKind::Rsa ? SignAlgorithm::RsaPssSha256 : SignAlgorithm::EcdsaSha256;
        std::atomic<int> bad{0};
        std::vector<std::thread> threads;
        for (uint8_t t = 0; t < 4; ++t)
            threads.emplace_back([&, t] {
                for (uint8_t i = 0; i < 12; ++i) {
                    const auto digest = core_test::counting_bytes(static_cast<uint8_t>(t * 16 + i), 32);
                    if (!test::signature_verifies(g->spki_der, alg, digest, key->sign(alg, digest))) ++bad;
                }
            });
        for (auto& t : threads) t.join();
        REQUIRE(bad == 0);
    }
}

TEST_CASE("OpenSSL holds a parsed key's private numbers in its secure heap until the key is dropped",
          "[core][crypto]") {
    const CryptoBackend& backend = backend_named("openssl");
    REQUIRE(CRYPTO_secure_malloc_initialized() == 1);
    struct Case {
        const core_test::GeneratedKey* key;
        size_t secret_bytes;  // d, p, q, dP, dQ, qInv; or the EC scalar
    };
    for (const Case& c : {Case{&core_test::rsa_key(2048), 256 + 5 * 128},
                          Case{&core_test::ec_key(MBEDTLS_ECP_DP_SECP256R1), 32},
                          Case{&core_test::ec_key(MBEDTLS_ECP_DP_SECP384R1), 48}}) {
        const auto parse_and_sign = [&] {
            auto key = backend.parse_private_key(c.key->private_pem.span());
            (void)key->sign(key->kind() == KeyKind::Rsa ? SignAlgorithm::RsaPkcs1Sha256
                                                        : SignAlgorithm::EcdsaSha256,
                            std::vector<uint8_t>(32, 7));
            return key;
        };
        // The first signature makes OpenSSL's private random generator, whose state stays in
        // the secure heap for the process.
        (void)parse_and_sign();
        const size_t before = CRYPTO_secure_used();
        auto key = parse_and_sign();
        const size_t held = CRYPTO_secure_used() - before;
        INFO(key_kind_name(key->kind()) << ": " << held << " bytes of the secure heap");
        REQUIRE(held >= c.secret_bytes);
        key.reset();
        REQUIRE(CRYPTO_secure_used() == before);
    }
}

TEST_CASE("a forked child sees zeros in OpenSSL's secure heap (MADV_WIPEONFORK)", "[core][crypto]") {
    (void)backend_named("openssl");  // makes the heap
    REQUIRE(CRYPTO_secure_malloc_initialized() == 1);
    const size_t n = 64;
    auto* p = static_cast<uint8_t*>(OPENSSL_secure_malloc(n));
    REQUIRE(p != nullptr);
    std::memset(p, 0x5A, n);
    const int child_sees_zeros = core_test::forked_child_sees_all_zero(p, n);
    const bool parent_keeps = !core_test::all_zero(p, n) && p[0] == 0x5A && p[n - 1] == 0x5A;
    OPENSSL_secure_clear_free(p, n);
    REQUIRE(child_sees_zeros == 1);
    REQUIRE(parent_keeps);
}
