// X.509 tbsCertificate walk: serial, issuer, subject and public key as raw DER.
#include "certificate_fields.h"

#include <mbedtls/asn1.h>

#include <stdexcept>
#include <string>

namespace keychaind::pkcs11 {
namespace {

constexpr int kSequence = MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE;

class DerReader {
  public:
    DerReader(const unsigned char* p, const unsigned char* end)
        : p_(const_cast<unsigned char*>(p)), end_(end) {}

    // Enters a constructed element: the reader then walks its content.
    DerReader enter(int tag, const char* what) {
        size_t len = 0;
        if (mbedtls_asn1_get_tag(&p_, end_, &len, tag) != 0) fail(what);
        DerReader inner(p_, p_ + len);
        p_ += len;
        return inner;
    }
    // The whole element (tag, length, content) as bytes.
    std::vector<uint8_t> take(int tag, const char* what) {
        const unsigned char* start = p_;
        size_t len = 0;
        if (mbedtls_asn1_get_tag(&p_, end_, &len, tag) != 0) fail(what);
        p_ += len;
        return std::vector<uint8_t>(start, static_cast<const unsigned char*>(p_));
    }
    void skip(int tag, const char* what) { take(tag, what); }
    bool next_is(int tag) const { return p_ < end_ && *p_ == tag; }
    bool at_end() const { return p_ == end_; }

  private:
    [[noreturn]] static void fail(const char* what) {
        throw std::runtime_error(std::string("certificate: cannot read the ") + what);
    }
    unsigned char* p_;
    const unsigned char* end_;
};

}  // namespace

CertificateFields read_certificate_fields(std::span<const uint8_t> der) {
    DerReader outer(der.data(), der.data() + der.size());
    DerReader cert = outer.enter(kSequence, "Certificate SEQUENCE");
    if (!outer.at_end())
        throw std::runtime_error("certificate: bytes after the Certificate SEQUENCE");
    DerReader tbs = cert.enter(kSequence, "tbsCertificate SEQUENCE");
    constexpr int kVersionTag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0;
    if (tbs.next_is(kVersionTag)) tbs.skip(kVersionTag, "version");
    CertificateFields f;
    f.serial_number = tbs.take(MBEDTLS_ASN1_INTEGER, "serial number");
    tbs.skip(kSequence, "signature algorithm");
    f.issuer = tbs.take(kSequence, "issuer");
    tbs.skip(kSequence, "validity");
    f.subject = tbs.take(kSequence, "subject");
    f.spki = tbs.take(kSequence, "subject public key info");
    return f;
}

}  // namespace keychaind::pkcs11
