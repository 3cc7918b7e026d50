// Test key generation with mbedTLS, cached per process.
#include "generated_keys.h"

#include "test_keys.h"

#include <mbedtls/rsa.h>

#include <map>
#include <mutex>
#include <stdexcept>

namespace keychaind::core_test {
namespace {

GeneratedKey export_key(mbedtls_pk_context* pk) {
    GeneratedKey k;
    SecretBytes buf(16 * 1024);
    int n = mbedtls_pk_write_key_der(pk, buf.data(), buf.size());
    if (n <= 0) throw std::runtime_error("mbedtls_pk_write_key_der failed");
    k.private_der = SecretBytes(buf.data() + buf.size() - static_cast<size_t>(n), static_cast<size_t>(n));
    buf = SecretBytes(16 * 1024);
    if (mbedtls_pk_write_key_pem(pk, buf.data(), buf.size()) != 0)
        throw std::runtime_error("mbedtls_pk_write_key_pem failed");
    k.private_pem = SecretBytes(buf.data(), std::char_traits<char>::length(reinterpret_cast<const char*>(buf.data())));
    std::vector<uint8_t> pub(4096);
    n = mbedtls_pk_write_pubkey_der(pk, pub.data(), pub.size());
    if (n <= 0) throw std::runtime_error("mbedtls_pk_write_pubkey_der failed");
    k.spki_der.assign(pub.end() - n, pub.end());
    return k;
}

std::mutex g_cache_mu;

}  // namespace

const GeneratedKey& rsa_key(unsigned bits) {
    static std::map<unsigned, GeneratedKey> cache;
    std::lock_guard lk(g_cache_mu);
    auto it = cache.find(bits);
    if (it != cache.end()) return it->second;
    PkContext ctx;
    if (mbedtls_pk_setup(&ctx.pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) != 0 ||
        mbedtls_rsa_gen_key(mbedtls_pk_rsa(ctx.pk), test::random_bytes, nullptr, bits, 65537) != 0)
        throw std::runtime_error("RSA key generation failed");
    return cache.emplace(bits, export_key(&ctx.pk)).first->second;
}

const GeneratedKey& ec_key(mbedtls_ecp_group_id curve) {
    static std::map<mbedtls_ecp_group_id, GeneratedKey> cache;
    std::lock_guard lk(g_cache_mu);
    auto it = cache.find(curve);
    if (it != cache.end()) return it->second;
    PkContext ctx;
    if (mbedtls_pk_setup(&ctx.pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
        mbedtls_ecp_gen_key(curve, mbedtls_pk_ec(ctx.pk), test::random_bytes, nullptr) != 0)
        throw std::runtime_error("EC key generation failed");
    return cache.emplace(curve, export_key(&ctx.pk)).first->second;
}

std::unique_ptr<PkContext> public_key_context(std::span<const uint8_t> spki_der) {
    auto ctx = std::make_unique<PkContext>();
    if (mbedtls_pk_parse_public_key(&ctx->pk, spki_der.data(), spki_der.size()) != 0)
        throw std::runtime_error("SPKI does not parse");
    return ctx;
}

}  // namespace keychaind::core_test
