// Writing requests and certificates with mbedTLS's ASN.1 writer.
#include "x509_writer.h"

#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha1.h>
#include <mbedtls/x509.h>

#include <memory>

#include "ctl.h"
#include "keychain/client.h"
#include "text_format.h"

namespace keychain::ctl {

namespace {

constexpr unsigned char kSequence = MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE;

std::string oid_bytes(const char* oid, size_t size) { return std::string(oid, size); }
#define KC_OID(x) oid_bytes(x, MBEDTLS_OID_SIZE(x))

// DER is written backwards into a buffer, as mbedTLS's asn1write functions do: the last field
// first, then each enclosing tag around what is already there.
class DerWriter {
  public:
    explicit DerWriter(size_t capacity) : buf_(capacity), p_(buf_.data() + buf_.size()) {}
    void add(int rc) {
        if (rc < 0) throw CtlError(kExitUsage, "the request or certificate is too large to encode");
        len_ += static_cast<size_t>(rc);
    }
    void raw(const std::vector<uint8_t>& b) {
        add(mbedtls_asn1_write_raw_buffer(&p_, start(), b.data(), b.size()));
    }
    void oid(const std::string& o) {
        add(mbedtls_asn1_write_oid(&p_, start(), o.data(), o.size()));
    }
    void octet_string(const std::vector<uint8_t>& b) {
        add(mbedtls_asn1_write_octet_string(&p_, start(), b.data(), b.size()));
    }
    // Wraps everything written since `mark` (an earlier length()) in `tag`.
    void wrap(size_t mark, unsigned char tag) {
        add(mbedtls_asn1_write_len(&p_, start(), len_ - mark));
        add(mbedtls_asn1_write_tag(&p_, start(), tag));
    }
    size_t length() const { return len_; }
    unsigned char** cursor() { return &p_; }
    unsigned char* start() { return buf_.data(); }
    std::vector<uint8_t> bytes() const {
        return std::vector<uint8_t>(const_cast<const unsigned char*>(p_),
                                    buf_.data() + buf_.size());
    }

  private:
    std::vector<uint8_t> buf_;
    unsigned char* p_;
    size_t len_ = 0;
};

void algorithm_identifier(DerWriter& w, const SignatureAlgorithm& alg) {
    const size_t mark = w.length();
    if (alg.rsa) w.add(mbedtls_asn1_write_null(w.cursor(), w.start()));
    w.oid(alg.oid);
    w.wrap(mark, kSequence);
}

// Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
void extension(DerWriter& w, const std::string& oid, bool critical,
               const std::vector<uint8_t>& value) {
    const size_t mark = w.length();
    w.octet_string(value);
    if (critical) w.add(mbedtls_asn1_write_bool(w.cursor(), w.start(), 1));
    w.oid(oid);
    w.wrap(mark, kSequence);
}

// UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5).
void time_field(DerWriter& w, std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char full[20];
    std::strftime(full, sizeof full, "%Y%m%d%H%M%SZ", &tm);
    const bool utc = tm.tm_year + 1900 < 2050;
    const char* buf = utc ? full + 2 : full;  // UTCTime: two-digit year
    w.add(mbedtls_asn1_write_tagged_string(
        w.cursor(), w.start(), utc ? MBEDTLS_ASN1_UTC_TIME : MBEDTLS_ASN1_GENERALIZED_TIME, buf,
        std::strlen(buf)));
}

// SHA-1 of subjectPublicKey's bits (RFC 5280 4.2.1.2, method 1).
std::vector<uint8_t> key_identifier(const std::vector<uint8_t>& spki) {
    unsigned char* p = const_cast<unsigned char*>(spki.data());
    const unsigned char* end = p + spki.size();
    size_t len = 0;
    mbedtls_asn1_bitstring bits{};
    if (mbedtls_asn1_get_tag(&p, end, &len, kSequence) != 0 ||
        mbedtls_asn1_get_tag(&p, end, &len, kSequence) != 0)
        throw CtlError(kExitDaemon, "the public key is not a SubjectPublicKeyInfo");
    p += len;
    if (mbedtls_asn1_get_bitstring(&p, end, &bits) != 0)
        throw CtlError(kExitDaemon, "the public key is not a SubjectPublicKeyInfo");
    std::vector<uint8_t> id(20);
    mbedtls_sha1_ret(bits.p, bits.len, id.data());
    return id;
}

std::vector<uint8_t> basic_constraints_end_entity() { return {0x30, 0x00}; }  // cA DEFAULT FALSE

std::vector<uint8_t> authority_key_identifier(const std::vector<uint8_t>& key_id) {
    DerWriter w(key_id.size() + 8);
    w.raw(key_id);
    w.wrap(0, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 0);  // keyIdentifier [0] IMPLICIT OCTET STRING
    w.wrap(0, kSequence);
    return w.bytes();
}

std::vector<uint8_t> octet_string_der(const std::vector<uint8_t>& b) {
    DerWriter w(b.size() + 8);
    w.octet_string(b);
    return w.bytes();
}

}  // namespace

SignatureAlgorithm signature_algorithm_for(int kc_kind) {
    switch (kc_kind) {
        case KC_KIND_RSA:
            return {KC_SIGN_RSA_PKCS1_SHA256, true, MBEDTLS_MD_SHA256,
                    KC_OID(MBEDTLS_OID_PKCS1_SHA256)};
        case KC_KIND_EC_P256:
            return {KC_SIGN_ECDSA_SHA256, false, MBEDTLS_MD_SHA256,
                    KC_OID(MBEDTLS_OID_ECDSA_SHA256)};
        case KC_KIND_EC_P384:
            return {KC_SIGN_ECDSA_SHA384, false, MBEDTLS_MD_SHA384,
                    KC_OID(MBEDTLS_OID_ECDSA_SHA384)};
        default:
            throw CtlError(kExitDaemon,
                           "the key is " + kind_name(kc_kind) + ": only RSA and EC keys sign");
    }
}

std::vector<uint8_t> request_info(const SubjectName& subject, const std::vector<uint8_t>& spki,
                                  const std::vector<uint8_t>& san_der) {
    DerWriter w(spki.size() + san_der.size() + 4096);
    if (!san_der.empty()) {
        extension(w, KC_OID(MBEDTLS_OID_SUBJECT_ALT_NAME), false, san_der);
        w.wrap(0, kSequence);                                    // Extensions
        w.wrap(0, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SET);  // the attribute's values
        w.oid(KC_OID(MBEDTLS_OID_PKCS9_CSR_EXT_REQ));
        w.wrap(0, kSequence);  // Attribute
    }
    w.wrap(0, MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED);  // attributes [0]
    w.raw(spki);  // byte for byte the key holder's SubjectPublicKeyInfo
    w.add(mbedtls_x509_write_names(w.cursor(), w.start(), subject.head()));
    w.add(mbedtls_asn1_write_int(w.cursor(), w.start(), 0));  // version v1
    w.wrap(0, kSequence);
    return w.bytes();
}

std::vector<uint8_t> self_signed_tbs(const CertificateFields& f, const SignatureAlgorithm& alg) {
    const auto key_id = key_identifier(f.spki);
    DerWriter w(f.spki.size() + f.san_der.size() + 4096);
    // [3] EXPLICIT Extensions
    if (!f.san_der.empty()) extension(w, KC_OID(MBEDTLS_OID_SUBJECT_ALT_NAME), false, f.san_der);
    extension(w, KC_OID(MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER), false,
              authority_key_identifier(key_id));
    extension(w, KC_OID(MBEDTLS_OID_SUBJECT_KEY_IDENTIFIER), false, octet_string_der(key_id));
    extension(w, KC_OID(MBEDTLS_OID_BASIC_CONSTRAINTS), true, basic_constraints_end_entity());
    w.wrap(0, kSequence);
    w.wrap(0, MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 3);
    w.raw(f.spki);
    w.add(mbedtls_x509_write_names(w.cursor(), w.start(), f.subject->head()));  // subject
    const size_t validity = w.length();
    time_field(w, f.not_after);
    time_field(w, f.not_before);
    w.wrap(validity, kSequence);
    w.add(mbedtls_x509_write_names(w.cursor(), w.start(), f.subject->head()));  // issuer
    algorithm_identifier(w, alg);
    const size_t serial = w.length();
    w.raw(f.serial);
    w.wrap(serial, MBEDTLS_ASN1_INTEGER);
    const size_t version = w.length();
    w.add(mbedtls_asn1_write_int(w.cursor(), w.start(), 2));  // v3
    w.wrap(version, MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0);
    w.wrap(0, kSequence);
    return w.bytes();
}

std::vector<uint8_t> signed_structure(const std::vector<uint8_t>& tbs,
                                      const SignatureAlgorithm& alg,
                                      const std::vector<uint8_t>& signature) {
    DerWriter w(tbs.size() + signature.size() + 256);
    w.add(mbedtls_asn1_write_bitstring(w.cursor(), w.start(), signature.data(),
                                       signature.size() * 8));
    algorithm_identifier(w, alg);
    w.raw(tbs);
    w.wrap(0, kSequence);
    return w.bytes();
}

std::vector<uint8_t> digest(mbedtls_md_type_t md, const std::vector<uint8_t>& data) {
    const mbedtls_md_info_t* info = mbedtls_md_info_from_type(md);
    std::vector<uint8_t> out(mbedtls_md_get_size(info));
    if (mbedtls_md(info, data.data(), data.size(), out.data()) != 0)
        throw CtlError(kExitLocalIo, "hashing failed");
    return out;
}

void check_signature(const std::vector<uint8_t>& spki, const SignatureAlgorithm& alg,
                     const std::vector<uint8_t>& hash, const std::vector<uint8_t>& signature) {
    std::unique_ptr<mbedtls_pk_context, void (*)(mbedtls_pk_context*)> pk(
        new mbedtls_pk_context, [](mbedtls_pk_context* p) {
            mbedtls_pk_free(p);
            delete p;
        });
    mbedtls_pk_init(pk.get());
    if (mbedtls_pk_parse_public_key(pk.get(), spki.data(), spki.size()) != 0 ||
        mbedtls_pk_verify(pk.get(), alg.md, hash.data(), hash.size(), signature.data(),
                          signature.size()) != 0)
        throw CtlError(kExitDaemon, "the signature does not verify with the key's public key");
}

}  // namespace keychain::ctl
