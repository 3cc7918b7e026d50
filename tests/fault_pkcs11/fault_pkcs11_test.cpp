// The SoftToken fixture and the fault module on their own, with SoftHSM2 in this process.
#include <mbedtls/ecdsa.h>
#include <mbedtls/gcm.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>

#include <p11-kit/p11-kit.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "fault_control.h"
#include "soft_token.h"
#include "temp_dir.h"
#include "test_keys.h"

using namespace keychaind;
using namespace keychaind::test;

namespace {

std::vector<uint8_t> digest_of(const std::string& text) {
    std::vector<uint8_t> d(32);
    mbedtls_sha256_ret(reinterpret_cast<const unsigned char*>(text.data()), text.size(), d.data(), 0);
    return d;
}

struct PublicKey {
    mbedtls_pk_context pk;
    explicit PublicKey(const std::vector<uint8_t>& spki) {
        mbedtls_pk_init(&pk);
        REQUIRE(mbedtls_pk_parse_public_key(&pk, spki.data(), spki.size()) == 0);
    }
    ~PublicKey() { mbedtls_pk_free(&pk); }
};

// CKM_ECDSA gives r || s, each as long as the order.
bool ecdsa_raw_verifies(const std::vector<uint8_t>& spki, const std::vector<uint8_t>& digest,
                        const std::vector<uint8_t>& sig) {
    PublicKey k(spki);
    const mbedtls_ecp_keypair* ec = mbedtls_pk_ec(k.pk);
    mbedtls_mpi r, s;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    const size_t half = sig.size() / 2;
    mbedtls_mpi_read_binary(&r, sig.data(), half);
    mbedtls_mpi_read_binary(&s, sig.data() + half, half);
    const int rc = mbedtls_ecdsa_verify(const_cast<mbedtls_ecp_group*>(&ec->grp), digest.data(), digest.size(), &ec->Q,
                                        &r, &s);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return rc == 0;
}

bool rsa_verifies(const std::vector<uint8_t>& spki, bool pss, const std::vector<uint8_t>& digest,
                  const std::vector<uint8_t>& sig) {
    PublicKey k(spki);
    if (pss) {
        mbedtls_pk_rsassa_pss_options opts{MBEDTLS_MD_SHA256, 32};
        return mbedtls_pk_verify_ext(MBEDTLS_PK_RSASSA_PSS, &opts, &k.pk, MBEDTLS_MD_SHA256, digest.data(),
                                     digest.size(), sig.data(), sig.size()) == 0;
    }
    return mbedtls_pk_verify(&k.pk, MBEDTLS_MD_SHA256, digest.data(), digest.size(), sig.data(), sig.size()) == 0;
}

// A SHA-256 DigestInfo, what CKM_RSA_PKCS signs.
std::vector<uint8_t> digest_info(const std::vector<uint8_t>& digest) {
    static constexpr uint8_t kPrefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                          0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    std::vector<uint8_t> di(sizeof kPrefix + digest.size());
    std::copy(std::begin(kPrefix), std::end(kPrefix), di.begin());
    std::copy(digest.begin(), digest.end(), di.begin() + sizeof kPrefix);
    return di;
}

CK_MECHANISM mech(CK_MECHANISM_TYPE t, void* param = nullptr, CK_ULONG len = 0) { return {t, param, len}; }

}  // namespace

TEST_CASE("SoftToken imports sensitive, non-extractable keys with certificates", "[softtoken]") {
    SoftToken token;
    CHECK(std::string(std::getenv("SOFTHSM2_CONF")) == token.config_path());
    for (const char* label : {SoftToken::kEcLabel, SoftToken::kRsaLabel}) {
        const auto p = token.key_protection(CKO_PRIVATE_KEY, label);
        CHECK(p.sensitive);
        CHECK_FALSE(p.extractable);
    }
    const auto aes = token.key_protection(CKO_SECRET_KEY, SoftToken::kAesLabel);
    CHECK(aes.sensitive);
    CHECK_FALSE(aes.extractable);

    auto s = token.open_session();
    const auto ec_priv = s->find(CKO_PRIVATE_KEY, SoftToken::kEcLabel);
    const auto ec_cert = s->find(CKO_CERTIFICATE, SoftToken::kEcLabel);
    CHECK(s->get_bytes(ec_cert, CKA_VALUE) == token.ec().cert_der);
    CHECK(s->get_bytes(ec_cert, CKA_ID) == s->get_bytes(ec_priv, CKA_ID));
    CHECK(s->get_bytes(s->find(CKO_PUBLIC_KEY, SoftToken::kRsaLabel), CKA_ID) ==
          s->get_bytes(s->find(CKO_PRIVATE_KEY, SoftToken::kRsaLabel), CKA_ID));
    CHECK_THROWS(s->get_bytes(s->find(CKO_SECRET_KEY, SoftToken::kAesLabel), CKA_VALUE));

    CHECK(token.ec_key_id().size() == 64);
    CHECK(token.rsa_key_id().size() == 64);
    CHECK(token.aes_key_id().size() == 32);
    CHECK(token.aes_key_hex().size() == 64);
    CHECK_THROWS_AS(SoftToken(), std::logic_error);  // one SOFTHSM2_CONF per process
}

TEST_CASE("SoftHSM2 signs and decrypts with the imported keys", "[softtoken]") {
    SoftToken token;
    auto s = token.open_session();
    const auto digest = digest_of("to be signed");

    SECTION("ECDSA") {
        const auto sig = s->sign(s->find(CKO_PRIVATE_KEY, SoftToken::kEcLabel), mech(CKM_ECDSA), digest);
        CHECK(sig.size() == 64);
        CHECK(ecdsa_raw_verifies(token.ec().spki_der, digest, sig));
    }
    SECTION("RSA PKCS#1 v1.5 and PSS") {
        const auto key = s->find(CKO_PRIVATE_KEY, SoftToken::kRsaLabel);
        CHECK(rsa_verifies(token.rsa().spki_der, false, digest, s->sign(key, mech(CKM_RSA_PKCS), digest_info(digest))));
        CK_RSA_PKCS_PSS_PARAMS pss{CKM_SHA256, CKG_MGF1_SHA256, 32};
        CHECK(rsa_verifies(token.rsa().spki_der, true, digest,
                           s->sign(key, mech(CKM_RSA_PKCS_PSS, &pss, sizeof pss), digest)));
    }
    SECTION("RSA-OAEP: SHA-1 decrypts; SoftHSM2 2.6 refuses SHA-256") {
        const auto priv = s->find(CKO_PRIVATE_KEY, SoftToken::kRsaLabel);
        const auto pub = s->find(CKO_PUBLIC_KEY, SoftToken::kRsaLabel);
        CK_RSA_PKCS_OAEP_PARAMS sha1{CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, nullptr, 0};
        const auto ct = s->encrypt(pub, mech(CKM_RSA_PKCS_OAEP, &sha1, sizeof sha1), digest);
        CHECK(s->decrypt(priv, mech(CKM_RSA_PKCS_OAEP, &sha1, sizeof sha1), ct) == digest);
        CK_RSA_PKCS_OAEP_PARAMS sha256{CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, nullptr, 0};
        CK_MECHANISM m = mech(CKM_RSA_PKCS_OAEP, &sha256, sizeof sha256);
        const CK_RV rv = s->functions()->C_DecryptInit(s->handle(), &m, priv);
        INFO(ckr_name(rv));
        CHECK(rv == CKR_ARGUMENTS_BAD);
        // What a daemon can do instead: CKM_RSA_X_509 (raw RSA) and the OAEP decoding in software.
        CHECK(s->decrypt(priv, mech(CKM_RSA_X_509), ct).size() == 256);
    }
    SECTION("AES-256-GCM by the token equals mbedTLS with the same bytes") {
        std::vector<uint8_t> iv(12, 0x42), aad = {'c', 't', 'x'}, plain(32, 0x17);
        CK_GCM_PARAMS gcm{iv.data(), iv.size(), iv.size() * 8, aad.data(), aad.size(), 128};
        const auto out = s->encrypt(s->find(CKO_SECRET_KEY, SoftToken::kAesLabel), mech(CKM_AES_GCM, &gcm, sizeof gcm),
                                    plain);
        REQUIRE(out.size() == plain.size() + 16);
        mbedtls_gcm_context g;
        mbedtls_gcm_init(&g);
        REQUIRE(mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, token.aes_key().data(), 256) == 0);
        std::vector<uint8_t> ct(plain.size()), tag(16);
        REQUIRE(mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT, plain.size(), iv.data(), iv.size(), aad.data(),
                                          aad.size(), plain.data(), ct.data(), tag.size(), tag.data()) == 0);
        mbedtls_gcm_free(&g);
        ct.insert(ct.end(), tag.begin(), tag.end());
        CHECK(out == ct);
    }
    SECTION("C_DigestKey over the sensitive AES key gives the software key id") {
        auto* fn = s->functions();
        const auto aes = s->find(CKO_SECRET_KEY, SoftToken::kAesLabel);  // no search during a digest
        CK_MECHANISM m = mech(CKM_SHA256);
        REQUIRE(fn->C_DigestInit(s->handle(), &m) == CKR_OK);
        std::string prefix = "keychaind key-id v1";
        REQUIRE(fn->C_DigestUpdate(s->handle(), reinterpret_cast<CK_BYTE*>(prefix.data()), prefix.size()) == CKR_OK);
        const CK_RV rv = fn->C_DigestKey(s->handle(), aes);
        INFO(ckr_name(rv));
        REQUIRE(rv == CKR_OK);
        std::vector<uint8_t> out(32);
        CK_ULONG len = out.size();
        REQUIRE(fn->C_DigestFinal(s->handle(), out.data(), &len) == CKR_OK);
        static constexpr char kHex[] = "0123456789abcdef";
        std::string id;
        for (size_t i = 0; i < 16; ++i) {
            id.push_back(kHex[out[i] >> 4]);
            id.push_back(kHex[out[i] & 15]);
        }
        CHECK(id == token.aes_key_id());
    }
}

TEST_CASE("SoftToken deletes and re-creates its token with the same keys", "[softtoken]") {
    SoftToken token;
    token.delete_token();
    CHECK_THROWS(token.open_session());
    token.recreate();
    auto s = token.open_session();
    const auto digest = digest_of("again");
    CHECK(ecdsa_raw_verifies(token.ec().spki_der, digest,
                             s->sign(s->find(CKO_PRIVATE_KEY, SoftToken::kEcLabel), mech(CKM_ECDSA), digest)));
}

TEST_CASE("a wrong PIN does not lock a SoftHSM2 token and a right one clears COUNT_LOW", "[softtoken]") {
    SoftToken token;
    CHECK((token.token_flags() & (CKF_USER_PIN_LOCKED | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW)) == 0);
    {
        Pkcs11Session s(token.label(), "");
        std::string wrong = "0000";
        CHECK(s.functions()->C_Login(s.handle(), CKU_USER, reinterpret_cast<CK_UTF8CHAR*>(wrong.data()),
                                     wrong.size()) == CKR_PIN_INCORRECT);
    }
    const CK_FLAGS after_wrong = token.token_flags();
    CHECK((after_wrong & CKF_USER_PIN_LOCKED) == 0);
    CHECK((after_wrong & CKF_USER_PIN_FINAL_TRY) == 0);
    CHECK((after_wrong & CKF_USER_PIN_COUNT_LOW) != 0);  // SoftHSM2 marks a failed login this way
    token.open_session();                                // logs in with the right PIN
    CHECK((token.token_flags() & CKF_USER_PIN_COUNT_LOW) == 0);
    token.init_token("other", "1111", "222222");
    CHECK(Pkcs11Session("other", "1111").token_flags() != 0);
}

TEST_CASE("the fault module forwards to SoftHSM2 and injects each fault", "[fault]") {
    SoftToken token;
    FaultModule fault;  // its copy, loaded into this process
    Pkcs11Session s(token.label(), token.pin(), fault.module());
    auto* fn = s.functions();
    REQUIRE(fn->version.major == 2);
    REQUIRE(fn->version.minor == 40);
    const auto key = s.find(CKO_PRIVATE_KEY, SoftToken::kEcLabel);
    const auto digest = digest_of("through the shim");
    auto sign_ok = [&] { return ecdsa_raw_verifies(token.ec().spki_der, digest, s.sign(key, mech(CKM_ECDSA), digest)); };
    CK_MECHANISM m = mech(CKM_ECDSA);
    std::vector<uint8_t> data = digest;
    CK_BYTE sig[256];
    CK_ULONG sig_len = sizeof sig;

    CK_INFO info{};
    REQUIRE(fn->C_GetInfo(&info) == CKR_OK);
    CHECK(std::string(reinterpret_cast<char*>(info.libraryDescription), 20) == "keychaind fault shim");
    CHECK(fault.log().find("mapped " + fault.module()) != std::string::npos);
    CHECK(fault.log().find("loaded " + fault.module()) != std::string::npos);
    CHECK(fault.log().find("login CKR_OK") != std::string::npos);
    CHECK(sign_ok());

    SECTION("device-removed fails sign, find, encrypt and decrypt; the session works again once disarmed") {
        fault.arm("device-removed");
        REQUIRE(fn->C_SignInit(s.handle(), &m, key) == CKR_OK);
        CHECK(fn->C_Sign(s.handle(), data.data(), data.size(), sig, &sig_len) == CKR_DEVICE_REMOVED);
        CK_ATTRIBUTE none{};
        CHECK(fn->C_FindObjectsInit(s.handle(), &none, 0) == CKR_DEVICE_REMOVED);
        CHECK(fn->C_FindObjectsFinal(s.handle()) == CKR_DEVICE_REMOVED);
        CHECK_THROWS_WITH(s.find(CKO_PRIVATE_KEY, SoftToken::kEcLabel), Catch::Contains("CKR_DEVICE_REMOVED"));
        fault.arm("none");
        const auto rsa = s.find(CKO_PRIVATE_KEY, SoftToken::kRsaLabel);
        // SoftHSM2 2.6 does OAEP with SHA-1 only.
        CK_RSA_PKCS_OAEP_PARAMS oaep{CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, nullptr, 0};
        const auto pub = s.find(CKO_PUBLIC_KEY, SoftToken::kRsaLabel);
        const auto ct = s.encrypt(pub, mech(CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep), digest);
        fault.arm("device-removed");
        CHECK_THROWS_WITH(s.decrypt(rsa, mech(CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep), ct),
                          Catch::Contains("CKR_DEVICE_REMOVED"));
        CHECK_THROWS_WITH(s.encrypt(pub, mech(CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep), digest),
                          Catch::Contains("CKR_DEVICE_REMOVED"));
        fault.arm("none");
        // The real operations were completed, so the same session signs and decrypts again.
        CHECK(sign_ok());
        CHECK(s.decrypt(rsa, mech(CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep), ct) == digest);
        CHECK(fault.log().find("device-removed C_Decrypt") != std::string::npos);
    }
    SECTION("session-invalid fires once, then disarms itself") {
        fault.arm("session-invalid");
        CHECK(fn->C_SignInit(s.handle(), &m, key) == CKR_SESSION_HANDLE_INVALID);
        CHECK(fault.word() == "none");
        CHECK(sign_ok());
        CHECK(fault.log().find("session-invalid C_SignInit") != std::string::npos);
    }
    SECTION("oversized answers lengths larger than the buffer") {
        fault.arm("oversized");
        REQUIRE(fn->C_SignInit(s.handle(), &m, key) == CKR_OK);
        sig_len = sizeof sig;
        CHECK(fn->C_Sign(s.handle(), data.data(), data.size(), sig, &sig_len) == CKR_OK);
        CHECK(sig_len > sizeof sig);
        CK_ATTRIBUTE a{CKA_LABEL, nullptr, 0};
        CHECK(fn->C_GetAttributeValue(s.handle(), key, &a, 1) == CKR_OK);
        CHECK(a.ulValueLen == (1UL << 30));
        fault.arm("none");
        CHECK(sign_ok());
    }
    SECTION("hang holds C_Sign until disarmed (at most 30 s)") {
        fault.arm("hang");
        REQUIRE(fn->C_SignInit(s.handle(), &m, key) == CKR_OK);
        std::thread disarm([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(400));
            fault.arm("none");
        });
        const auto t0 = std::chrono::steady_clock::now();
        sig_len = sizeof sig;
        CHECK(fn->C_Sign(s.handle(), data.data(), data.size(), sig, &sig_len) == CKR_OK);
        const auto took = std::chrono::steady_clock::now() - t0;
        disarm.join();
        CHECK(took >= std::chrono::milliseconds(350));
        CHECK(took < std::chrono::seconds(5));
        CHECK(ecdsa_raw_verifies(token.ec().spki_der, digest, {sig, sig + sig_len}));
    }
}

TEST_CASE("p11-kit loads the fault module by path", "[fault]") {
    SoftToken token;
    FaultModule fault;
    CK_FUNCTION_LIST* m = p11_kit_module_load(fault.module().c_str(), 0);
    REQUIRE(m != nullptr);
    CHECK(fault.log().find("loaded " + fault.module()) != std::string::npos);
    REQUIRE(p11_kit_module_initialize(m) == CKR_OK);
    char* name = p11_kit_module_get_name(m);
    CK_ULONG n = 0;
    CHECK(m->C_GetSlotList(CK_TRUE, nullptr, &n) == CKR_OK);
    CHECK(n >= 1);
    free(name);
    CHECK(p11_kit_module_finalize(m) == CKR_OK);
    p11_kit_module_release(m);
}
