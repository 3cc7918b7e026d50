// SubjectPublicKeyInfo from token attributes equals mbedTLS's SPKI of the same key, so a token
// key has the id the same key has as a file.
#include <catch2/catch.hpp>

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include <vector>

#include "core/error.h"
#include "core/key_id.h"
#include "test_keys.h"
#include "token/pkcs11_encoding.h"
#include "token/pkcs11_error.h"
#include "token/token_objects.h"

using namespace keychaind;
using namespace keychaind::token;
using Bytes = std::vector<uint8_t>;

namespace {

struct Pk {
    mbedtls_pk_context ctx;
    Pk() { mbedtls_pk_init(&ctx); }
    ~Pk() { mbedtls_pk_free(&ctx); }
};

struct RsaParts {
    Bytes modulus, exponent;
};

RsaParts rsa_parts(const test::TestIdentity& id) {
    Pk pk;
    REQUIRE(mbedtls_pk_parse_key(&pk.ctx, id.key_der_legacy.data(), id.key_der_legacy.size(), nullptr, 0) == 0);
    const mbedtls_rsa_context* rsa = mbedtls_pk_rsa(pk.ctx);
    RsaParts p;
    p.modulus.resize(mbedtls_mpi_size(&rsa->N));
    p.exponent.resize(mbedtls_mpi_size(&rsa->E));
    REQUIRE(mbedtls_mpi_write_binary(&rsa->N, p.modulus.data(), p.modulus.size()) == 0);
    REQUIRE(mbedtls_mpi_write_binary(&rsa->E, p.exponent.data(), p.exponent.size()) == 0);
    return p;
}

// The uncompressed point, bare.
Bytes ec_point(const test::TestIdentity& id) {
    Pk pk;
    REQUIRE(mbedtls_pk_parse_key(&pk.ctx, id.key_der_legacy.data(), id.key_der_legacy.size(), nullptr, 0) == 0);
    const mbedtls_ecp_keypair* ec = mbedtls_pk_ec(pk.ctx);
    Bytes out(200);
    size_t len = 0;
    REQUIRE(mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &len, out.data(), out.size()) == 0);
    out.resize(len);
    return out;
}

Bytes octet_string(const Bytes& v) {
    Bytes out = {0x04};
    if (v.size() >= 0x80) out.push_back(0x81);
    out.push_back(static_cast<uint8_t>(v.size()));
    out.insert(out.end(), v.begin(), v.end());
    return out;
}

const Bytes kP256Params = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
const Bytes kP384Params = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
const Bytes kSecp256k1Params = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};

}  // namespace

TEST_CASE("an RSA key's modulus and exponent give mbedTLS's SPKI, hence the file key's id", "[token][public_key]") {
    for (const unsigned bits : {2048u, 3072u}) {
        const auto id = test::make_identity(KeyKind::Rsa, bits);
        const auto parts = rsa_parts(id);
        const TokenPublicKey pub = public_key_from_rsa(parts.modulus, parts.exponent);
        REQUIRE(pub.kind == KeyKind::Rsa);
        REQUIRE(pub.bits == bits);
        REQUIRE(pub.spki == id.spki_der);
        REQUIRE(KeyId::for_public_key(pub.spki) == KeyId::for_public_key(id.spki_der));
        // A token may give the modulus with a leading zero byte.
        Bytes padded = {0x00};
        padded.insert(padded.end(), parts.modulus.begin(), parts.modulus.end());
        REQUIRE(public_key_from_rsa(padded, parts.exponent).spki == id.spki_der);
    }
}

TEST_CASE("an EC key's parameters and point give mbedTLS's SPKI", "[token][public_key]") {
    const struct {
        KeyKind kind;
        const Bytes& params;
        unsigned bits;
    } cases[] = {{KeyKind::EcP256, kP256Params, 256}, {KeyKind::EcP384, kP384Params, 384}};
    for (const auto& c : cases) {
        const auto id = test::make_identity(c.kind);
        const Bytes point = ec_point(id);
        const TokenPublicKey pub = public_key_from_ec(c.params, octet_string(point));
        REQUIRE(pub.kind == c.kind);
        REQUIRE(pub.bits == c.bits);
        REQUIRE(pub.spki == id.spki_der);
        // Some tokens give the point without its OCTET STRING.
        REQUIRE(public_key_from_ec(c.params, point).spki == id.spki_der);
    }
}

TEST_CASE("an SPKI from the token (CKA_PUBLIC_KEY_INFO, a certificate) is taken as mbedTLS writes it", "[token][public_key]") {
    const auto ec = test::make_identity(KeyKind::EcP256);
    REQUIRE(public_key_from_spki(ec.spki_der).spki == ec.spki_der);
    const auto rsa = test::make_identity(KeyKind::Rsa, 2048);
    const auto pub = public_key_from_spki(rsa.spki_der);
    REQUIRE(pub.kind == KeyKind::Rsa);
    REQUIRE(pub.bits == 2048);
    REQUIRE_THROWS_AS(public_key_from_spki(Bytes{0x30, 0x03, 0x02, 0x01, 0x01}), TokenFault);
    REQUIRE_THROWS_AS(public_key_from_spki(Bytes{}), TokenFault);
}

TEST_CASE("keys the software backend would refuse are refused from a token too", "[token][public_key]") {
    SECTION("an EC curve other than P-256 and P-384") {
        const auto id = test::make_identity(KeyKind::EcP256);
        try {
            public_key_from_ec(kSecp256k1Params, octet_string(ec_point(id)));
            FAIL("secp256k1 accepted");
        } catch (const KeychainError& e) {
            REQUIRE(e.code() == ErrorCode::Unsupported);
        }
    }
    SECTION("an RSA modulus under 2048 bits") {
        Bytes modulus(128, 0xff);  // 1024 bits, odd
        try {
            public_key_from_rsa(modulus, Bytes{0x01, 0x00, 0x01});
            FAIL("RSA-1024 accepted");
        } catch (const KeychainError& e) {
            REQUIRE(e.code() == ErrorCode::Unsupported);
            REQUIRE(std::string(e.what()).find("1024") != std::string::npos);
        }
    }
    SECTION("a point that is not on the curve, or of the wrong size") {
        const auto id = test::make_identity(KeyKind::EcP256);
        Bytes point = ec_point(id);
        point[40] ^= 0x01;
        REQUIRE_THROWS_AS(public_key_from_ec(kP256Params, octet_string(point)), TokenFault);
        REQUIRE_THROWS_AS(public_key_from_ec(kP256Params, Bytes(10, 0x04)), TokenFault);
        REQUIRE_THROWS_AS(public_key_from_ec(kP384Params, octet_string(ec_point(id))), TokenFault);
    }
    SECTION("an empty or absurd exponent") {
        const auto parts = rsa_parts(test::make_identity(KeyKind::Rsa, 2048));
        REQUIRE_THROWS_AS(public_key_from_rsa(parts.modulus, Bytes{}), TokenFault);
        REQUIRE_THROWS_AS(public_key_from_rsa(parts.modulus, Bytes(9, 1)), TokenFault);
        REQUIRE_THROWS_AS(public_key_from_rsa(parts.modulus, Bytes{0x01}), TokenFault);
    }
}

TEST_CASE("the fallback id of a token AES key depends on serial, CKA_ID and label only", "[token][public_key]") {
    const Bytes id1 = {0x01};
    const KeyId a = fallback_aes_key_id("111ed75496bd15ec", id1, "kek");
    REQUIRE(a.size() == KeyId::kSymmetricSize);
    REQUIRE(a == fallback_aes_key_id("111ed75496bd15ec", id1, "kek"));
    REQUIRE_FALSE(a == fallback_aes_key_id("222ed75496bd15ec", id1, "kek"));
    REQUIRE_FALSE(a == fallback_aes_key_id("111ed75496bd15ec", Bytes{0x02}, "kek"));
    REQUIRE_FALSE(a == fallback_aes_key_id("111ed75496bd15ec", id1, "kek2"));
    // First 16 bytes of SHA-256("keychaind token-key v1" ‖ serial ‖ id ‖ label).
    std::string in = "keychaind token-key v1111ed75496bd15ec";
    in += '\x01';
    in += "kek";
    uint8_t digest[32];
    crypto_backend().sha256({reinterpret_cast<const uint8_t*>(in.data()), in.size()}, digest);
    REQUIRE(a == *KeyId::from_bytes(std::span<const uint8_t>(digest, 16)));
}
