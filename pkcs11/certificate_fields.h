// CertificateFields: the parts of an X.509 certificate that PKCS#11 certificate objects carry.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace keychaind::pkcs11 {

struct CertificateFields {
    std::vector<uint8_t> subject;        // DER Name
    std::vector<uint8_t> issuer;         // DER Name
    std::vector<uint8_t> serial_number;  // DER INTEGER (tag and length included, as PKCS#11 wants)
    std::vector<uint8_t> spki;           // DER SubjectPublicKeyInfo
};

// Walks the DER structure of tbsCertificate only: extensions (even critical ones this module
// does not know) are no reason to hide a certificate. Throws std::runtime_error when the
// outline is not a certificate's.
CertificateFields read_certificate_fields(std::span<const uint8_t> der);

}  // namespace keychaind::pkcs11
