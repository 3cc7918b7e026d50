// DigestInfo prefixes and ECDSA r‖s → DER, checked against mbedTLS's own encodings.
#include <catch2/catch.hpp>

#include <mbedtls/asn1write.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include <vector>

#include "core/crypto_backend.h"
#include "test_keys.h"
#include "token/pkcs11_encoding.h"
#include "token/pkcs11_error.h"

using namespace keychaind;
using namespace keychaind::token;
using Bytes = std::vector<uint8_t>;

namespace {

Bytes unhex(std::string_view h) {
    Bytes out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
    return out;
}

struct Pk {
    mbedtls_pk_context ctx;
    Pk() { mbedtls_pk_init(&ctx); }
    ~Pk() { mbedtls_pk_free(&ctx); }
};

struct Mpi {
    mbedtls_mpi v;
    Mpi() { mbedtls_mpi_init(&v); }
    ~Mpi() { mbedtls_mpi_free(&v); }
};

void parse(Pk& pk, const test::TestIdentity& id) {
    REQUIRE(mbedtls_pk_parse_key(&pk.ctx, id.key_der_legacy.data(), id.key_der_legacy.size(), nullptr, 0) == 0);
}

// SEQUENCE { INTEGER r, INTEGER s } as mbedTLS writes an ECDSA signature.
Bytes mbedtls_der(const mbedtls_mpi& r, const mbedtls_mpi& s) {
    unsigned char buf[160];
    unsigned char* p = buf + sizeof buf;
    size_t len = 0;
    len += static_cast<size_t>(mbedtls_asn1_write_mpi(&p, buf, &s));
    len += static_cast<size_t>(mbedtls_asn1_write_mpi(&p, buf, &r));
    len += static_cast<size_t>(mbedtls_asn1_write_len(&p, buf, len));
    len += static_cast<size_t>(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    return Bytes(p, p + len);
}

}  // namespace

TEST_CASE("DigestInfo prefixes are RFC 8017's for SHA-256, SHA-384 and SHA-512", "[token][encoding]") {
    const auto bytes = [](SignAlgorithm a) {
        const auto p = digest_info_prefix(a);
        return Bytes(p.begin(), p.end());
    };
    REQUIRE(bytes(SignAlgorithm::RsaPkcs1Sha256) == unhex("3031300d060960864801650304020105000420"));
    REQUIRE(bytes(SignAlgorithm::RsaPkcs1Sha384) == unhex("3041300d060960864801650304020205000430"));
    REQUIRE(bytes(SignAlgorithm::RsaPkcs1Sha512) == unhex("3051300d060960864801650304020305000440"));
    REQUIRE(digest_info_prefix(SignAlgorithm::RsaPssSha256).empty());
    REQUIRE(digest_info_prefix(SignAlgorithm::EcdsaSha256).empty());
    REQUIRE(digest_info_prefix(SignAlgorithm::RsaPkcs1Raw).empty());
}

TEST_CASE("CKM_RSA_PKCS over prefix and digest is the signature mbedTLS makes for the hash", "[token][encoding]") {
    // PKCS#1 v1.5 signatures are deterministic: signing DigestInfo ‖ digest raw must give the
    // very bytes mbedTLS gives when it is told the hash.
    const auto id = test::make_identity(KeyKind::Rsa, 2048);
    Pk pk;
    parse(pk, id);
    mbedtls_rsa_context* rsa = mbedtls_pk_rsa(pk.ctx);
    const struct {
        SignAlgorithm alg;
        mbedtls_md_type_t md;
        size_t size;
    } cases[] = {{SignAlgorithm::RsaPkcs1Sha256, MBEDTLS_MD_SHA256, 32},
                 {SignAlgorithm::RsaPkcs1Sha384, MBEDTLS_MD_SHA384, 48},
                 {SignAlgorithm::RsaPkcs1Sha512, MBEDTLS_MD_SHA512, 64}};
    for (const auto& c : cases) {
        Bytes digest(c.size);
        for (size_t i = 0; i < digest.size(); ++i) digest[i] = static_cast<uint8_t>(i * 7 + 1);
        const auto prefix = digest_info_prefix(c.alg);
        Bytes info(prefix.begin(), prefix.end());
        info.insert(info.end(), digest.begin(), digest.end());
        Bytes with_hash(256), raw(256);
        REQUIRE(mbedtls_rsa_rsassa_pkcs1_v15_sign(rsa, test::random_bytes, nullptr, MBEDTLS_RSA_PRIVATE, c.md, 0,
                                                  digest.data(), with_hash.data()) == 0);
        REQUIRE(mbedtls_rsa_rsassa_pkcs1_v15_sign(rsa, test::random_bytes, nullptr, MBEDTLS_RSA_PRIVATE,
                                                  MBEDTLS_MD_NONE, static_cast<unsigned>(info.size()), info.data(),
                                                  raw.data()) == 0);
        REQUIRE(raw == with_hash);
    }
}

TEST_CASE("r‖s becomes minimal DER integers: leading zeros dropped, a high bit padded", "[token][encoding]") {
    SECTION("plain values") {
        Bytes raw(64, 0x11);
        const Bytes der = ecdsa_raw_to_der(raw, 32);
        Bytes want = {0x30, 0x44, 0x02, 0x20};
        want.insert(want.end(), 32, 0x11);
        want.insert(want.end(), {0x02, 0x20});
        want.insert(want.end(), 32, 0x11);
        REQUIRE(der == want);
    }
    SECTION("high bit on r, leading zero bytes on s") {
        Bytes raw(64, 0);
        std::fill(raw.begin(), raw.begin() + 32, 0x80);
        raw[32 + 31] = 0x05;  // s = 5
        const Bytes der = ecdsa_raw_to_der(raw, 32);
        Bytes want = {0x30, 0x26, 0x02, 0x21, 0x00};
        want.insert(want.end(), 32, 0x80);
        want.insert(want.end(), {0x02, 0x01, 0x05});
        REQUIRE(der == want);
    }
    SECTION("a leading zero followed by a high bit keeps one zero") {
        Bytes raw(96, 0x01);  // P-384 sizes
        raw[0] = 0x00;
        raw[1] = 0xff;
        const Bytes der = ecdsa_raw_to_der(raw, 48);
        REQUIRE(der[0] == 0x30);
        REQUIRE(der[2] == 0x02);
        REQUIRE(der[3] == 48);  // 47 value bytes after the dropped zero, plus one pad byte
        REQUIRE(der[4] == 0x00);
        REQUIRE(der[5] == 0xff);
        REQUIRE(der.size() == 2 + (2 + 48) + (2 + 48));
    }
    SECTION("wrong sizes and zero halves are the token's fault") {
        REQUIRE_THROWS_AS(ecdsa_raw_to_der(Bytes(63, 1), 32), TokenFault);
        REQUIRE_THROWS_AS(ecdsa_raw_to_der(Bytes(65, 1), 32), TokenFault);
        REQUIRE_THROWS_AS(ecdsa_raw_to_der(Bytes(96, 1), 32), TokenFault);
        Bytes zero_r(64, 1);
        std::fill(zero_r.begin(), zero_r.begin() + 32, 0);
        REQUIRE_THROWS_AS(ecdsa_raw_to_der(zero_r, 32), TokenFault);
        REQUIRE_THROWS_WITH(ecdsa_raw_to_der(Bytes(10, 1), 32),
                            Catch::Contains("10 bytes") && Catch::Contains("expected 64"));
    }
}

TEST_CASE("ECDSA r‖s converted to DER is byte for byte mbedTLS's encoding, and verifies", "[token][encoding]") {
    for (const KeyKind kind : {KeyKind::EcP256, KeyKind::EcP384}) {
        const auto id = test::make_identity(kind);
        Pk pk;
        parse(pk, id);
        mbedtls_ecp_keypair* ec = mbedtls_pk_ec(pk.ctx);
        const size_t field = ec_field_size(kind);
        // Enough signatures that some r or s starts with a high bit and some with a zero byte.
        for (int i = 0; i < 64; ++i) {
            Bytes digest(32);
            for (size_t j = 0; j < digest.size(); ++j) digest[j] = static_cast<uint8_t>(i * 31 + j);
            Mpi r, s;
            REQUIRE(mbedtls_ecdsa_sign(&ec->grp, &r.v, &s.v, &ec->d, digest.data(), digest.size(), test::random_bytes,
                                       nullptr) == 0);
            Bytes raw(2 * field);
            REQUIRE(mbedtls_mpi_write_binary(&r.v, raw.data(), field) == 0);
            REQUIRE(mbedtls_mpi_write_binary(&s.v, raw.data() + field, field) == 0);
            const Bytes der = ecdsa_raw_to_der(raw, field);
            REQUIRE(der == mbedtls_der(r.v, s.v));
            REQUIRE(crypto_backend().verify(id.spki_der, SignAlgorithm::EcdsaSha256, digest, der));
        }
    }
}

TEST_CASE("OAEP decoding of a raw RSA decryption gives what mbedTLS encrypted, and nothing for a bad block",
          "[token][encoding]") {
    const auto id = test::make_identity(KeyKind::Rsa, 2048);
    Pk pk;
    parse(pk, id);
    mbedtls_rsa_context* rsa = mbedtls_pk_rsa(pk.ctx);
    for (const auto& [md, hash_size] : {std::pair{MBEDTLS_MD_SHA1, size_t{20}}, std::pair{MBEDTLS_MD_SHA256, size_t{32}}}) {
        INFO("hash size " << hash_size);
        mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, md);
        for (const size_t len : {size_t{0}, size_t{1}, size_t{32}, 256 - 2 * hash_size - 2}) {
            Bytes msg(len);
            for (size_t i = 0; i < len; ++i) msg[i] = static_cast<uint8_t>(i + 1);
            Bytes ct(256), em(256);
            REQUIRE(mbedtls_rsa_rsaes_oaep_encrypt(rsa, test::random_bytes, nullptr, MBEDTLS_RSA_PUBLIC, nullptr, 0, len,
                                                   msg.data(), ct.data()) == 0);
            // What a token's CKM_RSA_X_509 decryption returns.
            REQUIRE(mbedtls_rsa_private(rsa, test::random_bytes, nullptr, ct.data(), em.data()) == 0);
            const auto pt = oaep_decode(em, hash_size);
            REQUIRE(pt.has_value());
            REQUIRE(Bytes(pt->data(), pt->data() + pt->size()) == msg);
            // The other hash, a flipped bit anywhere, a non-zero first byte: no plaintext.
            REQUIRE_FALSE(oaep_decode(em, hash_size == 20 ? 32 : 20).has_value());
            for (const size_t at : {size_t{0}, size_t{1}, size_t{100}, size_t{255}}) {
                Bytes bad = em;
                bad[at] ^= 0x01;
                REQUIRE_FALSE(oaep_decode(bad, hash_size).has_value());
            }
        }
    }
    REQUIRE_FALSE(oaep_decode(Bytes(60, 0), 32).has_value());  // shorter than 2 hashes + 2
}

TEST_CASE("CK_TOKEN_INFO text fields lose their blank padding", "[token][encoding]") {
    CK_UTF8CHAR label[32];
    std::fill(std::begin(label), std::end(label), ' ');
    std::copy_n("web", 3, label);
    REQUIRE(padded_text(label, sizeof label) == "web");
    std::fill(std::begin(label), std::end(label), ' ');
    REQUIRE(padded_text(label, sizeof label).empty());
}
