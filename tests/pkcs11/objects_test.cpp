// The token's objects: what each identity becomes, template searches, attribute reading rules.
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/x509_crt.h>

#include <catch2/catch.hpp>
#include <map>

#include "pkcs11_fixture.h"

using namespace keychaind::test;

namespace {

struct CertificateParts {
    Bytes subject, issuer, serial_content, spki;
};

CertificateParts parse(const Bytes& der) {
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    REQUIRE(mbedtls_x509_crt_parse_der(&crt, der.data(), der.size()) == 0);
    CertificateParts p{Bytes(crt.subject_raw.p, crt.subject_raw.p + crt.subject_raw.len),
                       Bytes(crt.issuer_raw.p, crt.issuer_raw.p + crt.issuer_raw.len),
                       Bytes(crt.serial.p, crt.serial.p + crt.serial.len),
                       Bytes(crt.pk_raw.p, crt.pk_raw.p + crt.pk_raw.len)};
    mbedtls_x509_crt_free(&crt);
    return p;
}

// The DER INTEGER PKCS#11 wants in CKA_SERIAL_NUMBER (short serials only, as the tests make).
Bytes der_integer(const Bytes& content) {
    Bytes out{0x02, static_cast<uint8_t>(content.size())};
    out.insert(out.end(), content.begin(), content.end());
    return out;
}

void check_rsa_public_parts(LoadedModule& m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                            const Bytes& spki) {
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    REQUIRE(mbedtls_pk_parse_public_key(&pk, spki.data(), spki.size()) == 0);
    mbedtls_rsa_context* rsa = mbedtls_pk_rsa(pk);
    Bytes n(mbedtls_rsa_get_len(rsa)), e(3);
    REQUIRE(mbedtls_rsa_export_raw(rsa, n.data(), n.size(), nullptr, 0, nullptr, 0, nullptr, 0,
                                   e.data(), e.size()) == 0);
    mbedtls_pk_free(&pk);
    CHECK(m.attribute(s, o, CKA_MODULUS) == n);
    CHECK(m.attribute(s, o, CKA_PUBLIC_EXPONENT) == Bytes{0x01, 0x00, 0x01});
    CHECK(e == Bytes{0x01, 0x00, 0x01});
}

}  // namespace

TEST_CASE(
    "every identity is a private key, a public key and its certificates, and AES keys are not "
    "shown") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    const TestKeychain& k = test_keychain();

    // 3 identities x (private + public + leaf) + 1 CA certificate of the chain.
    CHECK(m.find(s, {}).size() == 10);
    CHECK(m.find(s, {attr(CKA_CLASS, CK_OBJECT_CLASS{CKO_PRIVATE_KEY})}).size() == 3);
    CHECK(m.find(s, {attr(CKA_CLASS, CK_OBJECT_CLASS{CKO_PUBLIC_KEY})}).size() == 3);
    CHECK(m.find(s, {attr(CKA_CLASS, CK_OBJECT_CLASS{CKO_CERTIFICATE})}).size() == 4);
    CHECK(m.find(s, {attr(CKA_LABEL, std::string("kek"))}).empty());
    CHECK(m.find(s, {attr(CKA_CLASS, CK_OBJECT_CLASS{CKO_SECRET_KEY})}).empty());

    struct Case {
        const char* label;
        const TestIdentity* id;
        CK_KEY_TYPE type;
        Bytes leaf_cert;
    };
    for (const Case& c : {Case{"web-ec", &k.ec, CKK_EC, k.ec.cert_der},
                          Case{"web-rsa", &k.rsa, CKK_RSA, k.rsa.cert_der},
                          Case{"web-chain", &k.chain_leaf, CKK_EC, k.chain_leaf_cert_der}}) {
        INFO(c.label);
        const Bytes key_id = sha256(c.id->spki_der);  // keychaind's key id: SHA-256 of the SPKI
        const CertificateParts cert = parse(c.leaf_cert);

        const CK_OBJECT_HANDLE priv = m.object(s, CKO_PRIVATE_KEY, c.label);
        CHECK(m.ulong_attribute(s, priv, CKA_KEY_TYPE) == c.type);
        CHECK(m.attribute(s, priv, CKA_ID) == key_id);
        CHECK(m.attribute(s, priv, CKA_LABEL) == bytes_of(c.label));
        CHECK(m.bool_attribute(s, priv, CKA_TOKEN));
        CHECK(m.bool_attribute(s, priv, CKA_SENSITIVE));
        CHECK(m.bool_attribute(s, priv, CKA_ALWAYS_SENSITIVE));
        CHECK_FALSE(m.bool_attribute(s, priv, CKA_EXTRACTABLE));
        CHECK(m.bool_attribute(s, priv, CKA_NEVER_EXTRACTABLE));
        CHECK(m.bool_attribute(s, priv, CKA_SIGN));
        CHECK(m.bool_attribute(s, priv, CKA_DECRYPT) == (c.type == CKK_RSA));
        CHECK_FALSE(m.bool_attribute(s, priv, CKA_MODIFIABLE));
        CHECK_FALSE(m.bool_attribute(s, priv, CKA_ALWAYS_AUTHENTICATE));
        CHECK(m.attribute(s, priv, CKA_SUBJECT) == cert.subject);
        CHECK(m.attribute(s, priv, CKA_PUBLIC_KEY_INFO) == c.id->spki_der);

        const CK_OBJECT_HANDLE pub = m.object(s, CKO_PUBLIC_KEY, c.label);
        CHECK(m.ulong_attribute(s, pub, CKA_KEY_TYPE) == c.type);
        CHECK(m.attribute(s, pub, CKA_ID) == key_id);
        CHECK(m.attribute(s, pub, CKA_PUBLIC_KEY_INFO) == c.id->spki_der);
        if (c.type == CKK_RSA) {
            check_rsa_public_parts(m, s, pub, c.id->spki_der);
            check_rsa_public_parts(m, s, priv, c.id->spki_der);
            CHECK(m.ulong_attribute(s, pub, CKA_MODULUS_BITS) == 2048);
        } else {
            const bool p256 = c.id->kind == keychaind::KeyKind::EcP256;
            const Bytes oid =
                p256 ? Bytes{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
                     : Bytes{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
            CHECK(m.attribute(s, pub, CKA_EC_PARAMS) == oid);
            CHECK(m.attribute(s, priv, CKA_EC_PARAMS) == oid);
            // DER OCTET STRING holding the uncompressed point, which ends the SPKI's BIT STRING.
            const Bytes point = m.attribute(s, pub, CKA_EC_POINT);
            const size_t point_len = p256 ? 65 : 97;
            REQUIRE(point.size() == point_len + 2);
            CHECK(point[0] == 0x04);
            CHECK(point[1] == point_len);
            CHECK(point[2] == 0x04);
            CHECK(Bytes(point.begin() + 2, point.end()) ==
                  Bytes(c.id->spki_der.end() - static_cast<long>(point_len), c.id->spki_der.end()));
        }

        const auto certs =
            m.find(s, {attr(CKA_CLASS, CK_OBJECT_CLASS{CKO_CERTIFICATE}), attr(CKA_ID, key_id)});
        REQUIRE(certs.size() == 1);
        CHECK(m.ulong_attribute(s, certs[0], CKA_CERTIFICATE_TYPE) == CKC_X_509);
        CHECK(m.attribute(s, certs[0], CKA_VALUE) == c.leaf_cert);
        CHECK(m.attribute(s, certs[0], CKA_SUBJECT) == cert.subject);
        CHECK(m.attribute(s, certs[0], CKA_ISSUER) == cert.issuer);
        CHECK(m.attribute(s, certs[0], CKA_SERIAL_NUMBER) == der_integer(cert.serial_content));
        CHECK(m.attribute(s, certs[0], CKA_LABEL) == bytes_of(c.label));
        CHECK(m.ulong_attribute(s, certs[0], CKA_CERTIFICATE_CATEGORY) == 1);
        CHECK_FALSE(m.bool_attribute(s, certs[0], CKA_TRUSTED));
    }
}

TEST_CASE("a chain certificate is its own object, with CKA_ID the hash of its own public key") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    const TestIdentity& ca = test_keychain().chain_ca;
    const auto found = m.find(
        s, {attr(CKA_CLASS, CK_OBJECT_CLASS{CKO_CERTIFICATE}), attr(CKA_VALUE, ca.cert_der)});
    REQUIRE(found.size() == 1);
    CHECK(m.attribute(s, found[0], CKA_ID) == sha256(ca.spki_der));
    CHECK(m.attribute(s, found[0], CKA_LABEL) == bytes_of("web-chain chain 1"));
    CHECK(m.ulong_attribute(s, found[0], CKA_CERTIFICATE_CATEGORY) == 2);
    // The leaf's issuer is the CA's subject.
    const CK_OBJECT_HANDLE leaf = m.find(s, {attr(CKA_CLASS, CK_OBJECT_CLASS{CKO_CERTIFICATE}),
                                             attr(CKA_LABEL, std::string("web-chain"))})
                                      .at(0);
    CHECK(m.attribute(s, leaf, CKA_ISSUER) == m.attribute(s, found[0], CKA_SUBJECT));
    // No private key goes with the CA certificate.
    CHECK(m.find(s, {attr(CKA_CLASS, CK_OBJECT_CLASS{CKO_PRIVATE_KEY}),
                     attr(CKA_ID, sha256(ca.spki_der))})
              .empty());
}

TEST_CASE("C_FindObjects matches templates exactly and hands out results in parts") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    const Bytes rsa_id = sha256(test_keychain().rsa.spki_der);

    CHECK(m.find(s, {attr(CKA_ID, rsa_id)}).size() == 3);
    CHECK(m.find(s, {attr(CKA_KEY_TYPE, CK_KEY_TYPE{CKK_EC})}).size() ==
          4);  // 2 EC keys x (private, public)
    CHECK(m.find(s, {attr(CKA_KEY_TYPE, CK_KEY_TYPE{CKK_EC}),
                     attr(CKA_CLASS, CK_OBJECT_CLASS{CKO_PRIVATE_KEY})})
              .size() == 2);
    CHECK(m.find(s, {attr(CKA_SIGN, CK_BBOOL{CK_TRUE})}).size() == 3);
    CHECK(m.find(s, {attr(CKA_DECRYPT, CK_BBOOL{CK_TRUE})}).size() == 1);
    CHECK(m.find(s, {attr(CKA_TOKEN, CK_BBOOL{CK_FALSE})}).empty());
    CHECK(m.find(s, {attr(CKA_LABEL, std::string("web-rs"))}).empty());  // exact, not a prefix
    CHECK(m.find(s, {attr(CKA_LABEL, std::string("web-rsa!"))}).empty());
    CHECK(m.find(s, {attr(CKA_ID, Bytes(rsa_id.begin(), rsa_id.end() - 1))}).empty());
    CHECK(m.find(s, {attr(CKA_APPLICATION, std::string("x"))})
              .empty());  // an attribute no object has
    // A sensitive attribute never matches, whatever the value.
    CHECK(m.find(s, {attr(CKA_PRIVATE_EXPONENT, Bytes{1})}).empty());

    // One at a time; a second C_FindObjectsInit while one is active is refused.
    CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t = attr(CKA_CLASS, priv);
    REQUIRE(m->C_FindObjectsInit(s, &t, 1) == CKR_OK);
    CHECK(m->C_FindObjectsInit(s, &t, 1) == CKR_OPERATION_ACTIVE);
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0;
    for (int i = 0; i < 3; ++i) {
        REQUIRE(m->C_FindObjects(s, &h, 1, &n) == CKR_OK);
        CHECK(n == 1);
    }
    REQUIRE(m->C_FindObjects(s, &h, 1, &n) == CKR_OK);
    CHECK(n == 0);
    CHECK(m->C_FindObjects(s, nullptr, 1, &n) == CKR_ARGUMENTS_BAD);
    REQUIRE(m->C_FindObjectsFinal(s) == CKR_OK);
    CHECK(m->C_FindObjectsFinal(s) == CKR_OPERATION_NOT_INITIALIZED);
    CHECK(m->C_FindObjects(s, &h, 1, &n) == CKR_OPERATION_NOT_INITIALIZED);
    CHECK(m->C_FindObjectsInit(s, nullptr, 1) == CKR_ARGUMENTS_BAD);
    CK_ATTRIBUTE null_value{CKA_LABEL, nullptr, 4};
    CHECK(m->C_FindObjectsInit(s, &null_value, 1) == CKR_ARGUMENTS_BAD);
    std::vector<CK_ATTRIBUTE> huge(2000, t);
    CHECK(m->C_FindObjectsInit(s, huge.data(), huge.size()) == CKR_ARGUMENTS_BAD);
    CHECK(m->C_FindObjectsInit(s + 100, &t, 1) == CKR_SESSION_HANDLE_INVALID);
}

TEST_CASE(
    "C_GetAttributeValue answers sizes, short buffers, sensitive and unknown attributes per "
    "entry") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    const CK_OBJECT_HANDLE priv = m.object(s, CKO_PRIVATE_KEY, "web-rsa");

    // Size queries for every entry at once.
    CK_ATTRIBUTE sizes[] = {
        {CKA_LABEL, nullptr, 0}, {CKA_ID, nullptr, 0}, {CKA_MODULUS, nullptr, 0}};
    REQUIRE(m->C_GetAttributeValue(s, priv, sizes, 3) == CKR_OK);
    CHECK(sizes[0].ulValueLen == 7);
    CHECK(sizes[1].ulValueLen == 32);
    CHECK(sizes[2].ulValueLen == 256);

    // A short buffer: that entry says CK_UNAVAILABLE_INFORMATION, the others are still filled.
    uint8_t label[3];
    uint8_t id[32];
    CK_KEY_TYPE type = 0;
    CK_ATTRIBUTE mixed[] = {{CKA_LABEL, label, sizeof label},
                            {CKA_ID, id, sizeof id},
                            {CKA_KEY_TYPE, &type, sizeof type}};
    CHECK(m->C_GetAttributeValue(s, priv, mixed, 3) == CKR_BUFFER_TOO_SMALL);
    CHECK(mixed[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
    CHECK(mixed[1].ulValueLen == 32);
    CHECK(Bytes(id, id + 32) == sha256(test_keychain().rsa.spki_der));
    CHECK(mixed[2].ulValueLen == sizeof type);
    CHECK(type == CKK_RSA);

    // Secret parts: CKR_ATTRIBUTE_SENSITIVE, never a byte of them (the module has none anyway).
    for (CK_ATTRIBUTE_TYPE t : {CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1,
                                CKA_EXPONENT_2, CKA_COEFFICIENT}) {
        uint8_t buf[512];
        CK_ATTRIBUTE a[] = {{t, buf, sizeof buf}, {CKA_LABEL, nullptr, 0}};
        CHECK(m->C_GetAttributeValue(s, priv, a, 2) == CKR_ATTRIBUTE_SENSITIVE);
        CHECK(a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
        CHECK(a[1].ulValueLen == 7);
        CK_ATTRIBUTE size_only{t, nullptr, 0};
        CHECK(m->C_GetAttributeValue(s, priv, &size_only, 1) == CKR_ATTRIBUTE_SENSITIVE);
        CHECK(size_only.ulValueLen == CK_UNAVAILABLE_INFORMATION);
    }
    const CK_OBJECT_HANDLE ec_priv = m.object(s, CKO_PRIVATE_KEY, "web-ec");
    CK_ATTRIBUTE ec_value{CKA_VALUE, nullptr, 0};
    CHECK(m->C_GetAttributeValue(s, ec_priv, &ec_value, 1) == CKR_ATTRIBUTE_SENSITIVE);

    // An attribute the object does not have.
    CK_ATTRIBUTE unknown[] = {
        {CKA_VALUE_LEN, nullptr, 0}, {CKA_EC_POINT, nullptr, 0}, {CKA_CLASS, nullptr, 0}};
    CHECK(m->C_GetAttributeValue(s, priv, unknown, 3) == CKR_ATTRIBUTE_TYPE_INVALID);
    CHECK(unknown[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
    CHECK(unknown[1].ulValueLen == CK_UNAVAILABLE_INFORMATION);
    CHECK(unknown[2].ulValueLen == sizeof(CK_OBJECT_CLASS));

    // Bad handles and arguments.
    CK_ATTRIBUTE one{CKA_LABEL, nullptr, 0};
    CHECK(m->C_GetAttributeValue(s, 999999, &one, 1) == CKR_OBJECT_HANDLE_INVALID);
    CHECK(m->C_GetAttributeValue(s + 1, priv, &one, 1) == CKR_SESSION_HANDLE_INVALID);
    CHECK(m->C_GetAttributeValue(s, priv, nullptr, 1) == CKR_ARGUMENTS_BAD);
    CHECK(m->C_GetAttributeValue(s, priv, nullptr, 0) == CKR_OK);
}

TEST_CASE("objects can be read but not created, changed, copied or destroyed") {
    KeychainDaemon daemon;
    LoadedModule m(daemon.socket());
    const CK_SESSION_HANDLE s = m.open_session();
    const CK_OBJECT_HANDLE priv = m.object(s, CKO_PRIVATE_KEY, "web-ec");
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t{CKA_EXTRACTABLE, &yes, sizeof yes};
    CK_OBJECT_HANDLE out = CK_INVALID_HANDLE;
    CHECK(m->C_SetAttributeValue(s, priv, &t, 1) == CKR_ACTION_PROHIBITED);
    CHECK(m->C_DestroyObject(s, priv) == CKR_ACTION_PROHIBITED);
    CHECK(m->C_CopyObject(s, priv, &t, 1, &out) == CKR_ACTION_PROHIBITED);
    CHECK(m->C_CreateObject(s, &t, 1, &out) == CKR_FUNCTION_NOT_SUPPORTED);
    CHECK(m->C_DestroyObject(s, 424242) == CKR_OBJECT_HANDLE_INVALID);
    CHECK(m.find(s, {}).size() == 10);
    CK_ULONG size = 0;
    CHECK(m->C_GetObjectSize(s, priv, &size) == CKR_OK);
    CHECK(size == CK_UNAVAILABLE_INFORMATION);
}
