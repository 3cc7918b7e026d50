// DER for what csr and keygen sign: PKCS#10 requests and X.509 certificates, built around a
// SubjectPublicKeyInfo and signed by whoever holds the key (keychaind, a token, a local key).
#pragma once

#include <mbedtls/md.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

#include "x509_names.h"

namespace keychain::ctl {

struct SignatureAlgorithm {
    int kc_algorithm = 0;  // KC_SIGN_* (docs/protocol.md)
    bool rsa = false;      // else ECDSA
    mbedtls_md_type_t md = MBEDTLS_MD_NONE;
    std::string oid;  // signatureAlgorithm
};

// RSA: sha256WithRSAEncryption (PKCS#1 v1.5); EC P-256: ecdsa-with-SHA256; P-384:
// ecdsa-with-SHA384. `kc_kind` is KC_KIND_*; CtlError for an AES key.
SignatureAlgorithm signature_algorithm_for(int kc_kind);

// CertificationRequestInfo (RFC 2986), with an extensionRequest for subjectAltName when
// `san_der` (subject_alt_names_der) is not empty.
std::vector<uint8_t> request_info(const SubjectName& subject, const std::vector<uint8_t>& spki,
                                  const std::vector<uint8_t>& san_der);

struct CertificateFields {
    const SubjectName* subject = nullptr;  // and issuer: self-signed
    std::vector<uint8_t> spki;
    std::vector<uint8_t> san_der;
    std::vector<uint8_t> serial;  // positive, at most 20 bytes
    std::time_t not_before = 0;
    std::time_t not_after = 0;
};
// TBSCertificate (RFC 5280) of a self-signed end-entity certificate: basicConstraints CA:FALSE
// (critical), subjectKeyIdentifier and authorityKeyIdentifier (SHA-1 of the public key bits),
// subjectAltName when given.
std::vector<uint8_t> self_signed_tbs(const CertificateFields& fields,
                                     const SignatureAlgorithm& alg);

// SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature }: a request or a certificate.
// The AlgorithmIdentifier has NULL parameters for RSA and none for ECDSA (RFC 5758 3.2).
std::vector<uint8_t> signed_structure(const std::vector<uint8_t>& tbs,
                                      const SignatureAlgorithm& alg,
                                      const std::vector<uint8_t>& signature);

std::vector<uint8_t> digest(mbedtls_md_type_t md, const std::vector<uint8_t>& data);
// Whoever signed, the signature must verify with the public key before anything is written:
// CtlError(kExitDaemon) otherwise.
void check_signature(const std::vector<uint8_t>& spki, const SignatureAlgorithm& alg,
                     const std::vector<uint8_t>& hash, const std::vector<uint8_t>& signature);

}  // namespace keychain::ctl
