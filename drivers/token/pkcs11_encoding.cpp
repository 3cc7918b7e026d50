// DigestInfo prefixes, ECDSA signature DER, SubjectPublicKeyInfo from token attributes (mbedTLS).
#include "token/pkcs11_encoding.h"

#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include <algorithm>
#include <array>

#include "core/error.h"
#include "token/pkcs11_error.h"

namespace keychaind::token {
namespace {

constexpr std::array<uint8_t, 19> kSha256Info = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                 0x01, 0x05, 0x00, 0x04, 0x20};
constexpr std::array<uint8_t, 19> kSha384Info = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                 0x02, 0x05, 0x00, 0x04, 0x30};
constexpr std::array<uint8_t, 19> kSha512Info = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                 0x03, 0x05, 0x00, 0x04, 0x40};

// Named-curve OIDs as CKA_EC_PARAMS holds them (DER, tag included).
constexpr std::array<uint8_t, 10> kP256Oid = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr std::array<uint8_t, 7> kP384Oid = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

struct Pk {
    mbedtls_pk_context ctx;
    Pk() { mbedtls_pk_init(&ctx); }
    ~Pk() { mbedtls_pk_free(&ctx); }
    Pk(const Pk&) = delete;
    Pk& operator=(const Pk&) = delete;
};

std::vector<uint8_t> write_spki(mbedtls_pk_context* pk) {
    std::vector<uint8_t> buf(2048);
    const int n = mbedtls_pk_write_pubkey_der(pk, buf.data(), buf.size());
    if (n <= 0) throw TokenFault("the public key cannot be encoded");
    return {buf.end() - n, buf.end()};
}

TokenPublicKey classify(mbedtls_pk_context* pk) {
    TokenPublicKey out;
    switch (mbedtls_pk_get_type(pk)) {
        case MBEDTLS_PK_RSA:
            out.kind = KeyKind::Rsa;
            out.bits = static_cast<unsigned>(mbedtls_pk_get_bitlen(pk));
            if (out.bits < 2048 || out.bits > 4096)
                throw KeychainError(ErrorCode::Unsupported, "RSA key of " + std::to_string(out.bits) +
                                                                " bits; only 2048 to 4096 are accepted");
            break;
        case MBEDTLS_PK_ECKEY:
        case MBEDTLS_PK_ECKEY_DH:
        case MBEDTLS_PK_ECDSA: {
            const auto gid = mbedtls_pk_ec(*pk)->grp.id;
            if (gid == MBEDTLS_ECP_DP_SECP256R1) {
                out.kind = KeyKind::EcP256;
                out.bits = 256;
            } else if (gid == MBEDTLS_ECP_DP_SECP384R1) {
                out.kind = KeyKind::EcP384;
                out.bits = 384;
            } else {
                throw KeychainError(ErrorCode::Unsupported, "EC key on an unsupported curve; only P-256 and P-384");
            }
            break;
        }
        default:
            throw KeychainError(ErrorCode::Unsupported,
                                std::string("unsupported key type ") + mbedtls_pk_get_name(pk));
    }
    out.spki = write_spki(pk);
    return out;
}

// A DER INTEGER holding the unsigned big-endian value `v`.
void put_integer(std::vector<uint8_t>& out, std::span<const uint8_t> v) {
    size_t skip = 0;
    while (skip + 1 < v.size() && v[skip] == 0) ++skip;
    v = v.subspan(skip);
    const bool pad = (v[0] & 0x80) != 0;
    out.push_back(0x02);
    out.push_back(static_cast<uint8_t>(v.size() + (pad ? 1 : 0)));  // at most 67 for P-384 and below
    if (pad) out.push_back(0x00);
    out.insert(out.end(), v.begin(), v.end());
}

// The value of a DER OCTET STRING that spans all of `der`; empty when it is not one.
std::span<const uint8_t> octet_string_value(std::span<const uint8_t> der) {
    if (der.size() < 2 || der[0] != 0x04) return {};
    size_t len = der[1];
    size_t header = 2;
    if (len == 0x81) {
        if (der.size() < 3) return {};
        len = der[2];
        header = 3;
    } else if (len > 0x81) {
        return {};  // no point needs more than 255 bytes
    }
    if (header + len != der.size()) return {};
    return der.subspan(header);
}

// MGF1 (RFC 8017 §B.2.1): out ^= the mask made from seed (XORed in place, so no mask lingers).
bool mgf1_xor(const mbedtls_md_info_t* md, std::span<const uint8_t> seed, std::span<uint8_t> out) {
    const size_t h = mbedtls_md_get_size(md);
    mbedtls_md_context_t ctx;
    mbedtls_md_init(&ctx);
    bool ok = mbedtls_md_setup(&ctx, md, 0) == 0;
    uint8_t block[MBEDTLS_MD_MAX_SIZE];
    for (uint32_t counter = 0; ok && static_cast<size_t>(counter) * h < out.size(); ++counter) {
        const uint8_t c[4] = {static_cast<uint8_t>(counter >> 24), static_cast<uint8_t>(counter >> 16),
                              static_cast<uint8_t>(counter >> 8), static_cast<uint8_t>(counter)};
        ok = mbedtls_md_starts(&ctx) == 0 && mbedtls_md_update(&ctx, seed.data(), seed.size()) == 0 &&
             mbedtls_md_update(&ctx, c, sizeof c) == 0 && mbedtls_md_finish(&ctx, block) == 0;
        const size_t at = counter * h;
        for (size_t i = 0; ok && i < h && at + i < out.size(); ++i) out[at + i] ^= block[i];
    }
    secure_wipe(block, sizeof block);
    mbedtls_md_free(&ctx);
    return ok;
}

}  // namespace

std::optional<SecretBytes> oaep_decode(std::span<const uint8_t> em, size_t hash_size) {
    const mbedtls_md_info_t* md =
        mbedtls_md_info_from_type(hash_size == 20 ? MBEDTLS_MD_SHA1 : MBEDTLS_MD_SHA256);
    const size_t h = mbedtls_md_get_size(md);
    const size_t k = em.size();
    if (h != hash_size || k < 2 * h + 2) return std::nullopt;
    SecretBytes seed(em.subspan(1, h));
    SecretBytes db(em.subspan(1 + h));
    uint8_t label_hash[MBEDTLS_MD_MAX_SIZE];
    if (!mgf1_xor(md, db.span(), seed.span()) || !mgf1_xor(md, seed.span(), db.span()) ||
        mbedtls_md(md, nullptr, 0, label_hash) != 0)
        return std::nullopt;
    // DB = lHash ‖ PS (zeros) ‖ 0x01 ‖ M; Y (em[0]) must be zero. As mbedTLS decodes it: one
    // "bad" accumulator, no early exit.
    unsigned bad = em[0];
    for (size_t i = 0; i < h; ++i) bad |= db.data()[i] ^ label_hash[i];
    size_t pad_len = 0;
    unsigned pad_done = 0;
    for (size_t i = h; i < db.size(); ++i) {
        pad_done |= db.data()[i];
        pad_len += ((pad_done | static_cast<unsigned>(-static_cast<int>(pad_done))) >> 7 & 1) ^ 1;
    }
    const size_t marker = h + pad_len;
    bad |= marker < db.size() ? db.data()[marker] ^ 0x01u : 1u;
    if (bad != 0) return std::nullopt;
    return SecretBytes(db.span().subspan(marker + 1));
}

std::span<const uint8_t> digest_info_prefix(SignAlgorithm alg) noexcept {
    switch (alg) {
        case SignAlgorithm::RsaPkcs1Sha256: return kSha256Info;
        case SignAlgorithm::RsaPkcs1Sha384: return kSha384Info;
        case SignAlgorithm::RsaPkcs1Sha512: return kSha512Info;
        default: return {};
    }
}

size_t ec_field_size(KeyKind kind) noexcept {
    switch (kind) {
        case KeyKind::EcP256: return 32;
        case KeyKind::EcP384: return 48;
        default: return 0;
    }
}

std::vector<uint8_t> ecdsa_raw_to_der(std::span<const uint8_t> raw, size_t field_size) {
    if (field_size == 0 || field_size > 66 || raw.size() != 2 * field_size)
        throw TokenFault("the ECDSA signature is " + std::to_string(raw.size()) + " bytes, expected " +
                         std::to_string(2 * field_size) + " (r and s of " + std::to_string(field_size) +
                         " bytes each)");
    const auto r = raw.first(field_size);
    const auto s = raw.subspan(field_size);
    const auto zero = [](std::span<const uint8_t> v) {
        return std::all_of(v.begin(), v.end(), [](uint8_t b) { return b == 0; });
    };
    if (zero(r) || zero(s)) throw TokenFault("the ECDSA signature has a zero r or s");
    std::vector<uint8_t> body;
    body.reserve(2 * field_size + 6);
    put_integer(body, r);
    put_integer(body, s);
    std::vector<uint8_t> out;
    out.reserve(body.size() + 3);
    out.push_back(0x30);
    if (body.size() >= 0x80) out.push_back(0x81);
    out.push_back(static_cast<uint8_t>(body.size()));
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

TokenPublicKey public_key_from_rsa(std::span<const uint8_t> modulus, std::span<const uint8_t> exponent) {
    if (modulus.empty() || exponent.empty() || exponent.size() > 8)
        throw TokenFault("the RSA modulus or public exponent is missing or malformed");
    Pk pk;
    if (mbedtls_pk_setup(&pk.ctx, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) != 0)
        throw TokenFault("cannot set up an RSA key");
    mbedtls_rsa_context* rsa = mbedtls_pk_rsa(pk.ctx);
    if (mbedtls_rsa_import_raw(rsa, modulus.data(), modulus.size(), nullptr, 0, nullptr, 0, nullptr, 0,
                               exponent.data(), exponent.size()) != 0 ||
        mbedtls_rsa_complete(rsa) != 0 || mbedtls_rsa_check_pubkey(rsa) != 0)
        throw TokenFault("the RSA modulus and public exponent do not make a valid public key");
    return classify(&pk.ctx);
}

TokenPublicKey public_key_from_ec(std::span<const uint8_t> ec_params, std::span<const uint8_t> ec_point) {
    mbedtls_ecp_group_id gid;
    if (std::equal(ec_params.begin(), ec_params.end(), kP256Oid.begin(), kP256Oid.end()))
        gid = MBEDTLS_ECP_DP_SECP256R1;
    else if (std::equal(ec_params.begin(), ec_params.end(), kP384Oid.begin(), kP384Oid.end()))
        gid = MBEDTLS_ECP_DP_SECP384R1;
    else
        throw KeychainError(ErrorCode::Unsupported,
                            "EC key on an unsupported curve (or explicit curve parameters); only the "
                            "named curves P-256 and P-384");
    const size_t field = gid == MBEDTLS_ECP_DP_SECP256R1 ? 32 : 48;
    std::span<const uint8_t> point = octet_string_value(ec_point);
    // Some tokens give the bare point, against the standard.
    if (point.size() != 2 * field + 1 && ec_point.size() == 2 * field + 1) point = ec_point;
    if (point.size() != 2 * field + 1 || point[0] != 0x04)
        throw TokenFault("CKA_EC_POINT is " + std::to_string(ec_point.size()) +
                         " bytes and not an OCTET STRING around an uncompressed point of " +
                         std::to_string(2 * field + 1) + " bytes");
    Pk pk;
    if (mbedtls_pk_setup(&pk.ctx, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0)
        throw TokenFault("cannot set up an EC key");
    mbedtls_ecp_keypair* ec = mbedtls_pk_ec(pk.ctx);
    if (mbedtls_ecp_group_load(&ec->grp, gid) != 0 ||
        mbedtls_ecp_point_read_binary(&ec->grp, &ec->Q, point.data(), point.size()) != 0 ||
        mbedtls_ecp_check_pubkey(&ec->grp, &ec->Q) != 0)
        throw TokenFault("CKA_EC_POINT is not a point on the key's curve");
    return classify(&pk.ctx);
}

TokenPublicKey public_key_from_spki(std::span<const uint8_t> spki) {
    Pk pk;
    if (spki.empty() || mbedtls_pk_parse_public_key(&pk.ctx, spki.data(), spki.size()) != 0)
        throw TokenFault("the SubjectPublicKeyInfo does not parse");
    return classify(&pk.ctx);
}

std::string padded_text(const CK_UTF8CHAR* field, size_t size) {
    size_t n = size;
    while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\0')) --n;
    return std::string(reinterpret_cast<const char*>(field), n);
}

}  // namespace keychaind::token
