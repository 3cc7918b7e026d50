// SubjectPublicKeyInfo -> modulus/exponent or EC parameters/point, with mbedTLS.
#include "public_key_parts.h"

#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include <stdexcept>
#include <string>

#include "der_codec.h"

namespace keychaind::pkcs11 {
namespace {

struct Pk {
    mbedtls_pk_context ctx;
    Pk() { mbedtls_pk_init(&ctx); }
    ~Pk() { mbedtls_pk_free(&ctx); }
    Pk(const Pk&) = delete;
    Pk& operator=(const Pk&) = delete;
};

struct Mpi {
    mbedtls_mpi v;
    Mpi() { mbedtls_mpi_init(&v); }
    ~Mpi() { mbedtls_mpi_free(&v); }
    Mpi(const Mpi&) = delete;
    Mpi& operator=(const Mpi&) = delete;
};

std::vector<uint8_t> unsigned_bytes(const mbedtls_mpi& m) {
    std::vector<uint8_t> out(mbedtls_mpi_size(&m));
    if (out.empty()) out.push_back(0);
    if (mbedtls_mpi_write_binary(&m, out.data(), out.size()) != 0)
        throw std::runtime_error("cannot write an RSA number");
    return out;
}

}  // namespace

PublicKeyParts parse_public_key(std::span<const uint8_t> spki) {
    Pk pk;
    if (spki.empty() || mbedtls_pk_parse_public_key(&pk.ctx, spki.data(), spki.size()) != 0)
        throw std::runtime_error("the public key does not parse as a SubjectPublicKeyInfo");
    PublicKeyParts parts;
    switch (mbedtls_pk_get_type(&pk.ctx)) {
        case MBEDTLS_PK_RSA: {
            parts.family = KeyFamily::Rsa;
            parts.bits = static_cast<unsigned>(mbedtls_pk_get_bitlen(&pk.ctx));
            Mpi n, e;
            if (mbedtls_rsa_export(mbedtls_pk_rsa(pk.ctx), &n.v, nullptr, nullptr, nullptr, &e.v) !=
                0)
                throw std::runtime_error("cannot read the RSA public key");
            parts.modulus = unsigned_bytes(n.v);
            parts.public_exponent = unsigned_bytes(e.v);
            return parts;
        }
        case MBEDTLS_PK_ECKEY:
        case MBEDTLS_PK_ECDSA: {
            parts.family = KeyFamily::Ec;
            const mbedtls_ecp_keypair* ec = mbedtls_pk_ec(pk.ctx);
            const char* oid = nullptr;
            size_t oid_len = 0;
            if (mbedtls_oid_get_oid_by_ec_grp(ec->grp.id, &oid, &oid_len) != 0)
                throw std::runtime_error("the EC key is not on a named curve");
            parts.ec_params = der_tlv(kDerOid, {reinterpret_cast<const uint8_t*>(oid), oid_len});
            unsigned char point[2 * MBEDTLS_ECP_MAX_BYTES + 1];
            size_t point_len = 0;
            if (mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED,
                                               &point_len, point, sizeof point) != 0)
                throw std::runtime_error("cannot write the EC point");
            parts.ec_point = der_tlv(kDerOctetString, {point, point_len});
            parts.bits = static_cast<unsigned>(ec->grp.nbits);
            parts.ec_order_bytes = mbedtls_mpi_size(&ec->grp.N);
            return parts;
        }
        default:
            throw std::runtime_error("the public key is neither RSA nor EC");
    }
}

}  // namespace keychaind::pkcs11
