// What csr and keygen put in a certificate or request: the subject (a distinguished name) and
// the subjectAltName extension, checked and encoded here.
#pragma once

#include <mbedtls/asn1.h>

#include <cstdint>
#include <string>
#include <vector>

namespace keychain::ctl {

// A parsed --subject ("CN=www.example.com,O=Example,C=FR"), as mbedTLS's writers take it.
class SubjectName {
  public:
    // usage_error naming the problem when mbedTLS cannot write it.
    explicit SubjectName(const std::string& text);
    ~SubjectName();
    SubjectName(const SubjectName&) = delete;
    SubjectName& operator=(const SubjectName&) = delete;

    const std::string& text() const { return text_; }
    mbedtls_asn1_named_data* head() const { return head_; }

  private:
    std::string text_;
    mbedtls_asn1_named_data* head_ = nullptr;
};

// The DER of a subjectAltName extension's value (GeneralNames) for --san values "DNS:name",
// "IP:address" (IPv4 or IPv6), "email:address" or "URI:uri"; empty when `sans` is empty.
// usage_error for anything else.
std::vector<uint8_t> subject_alt_names_der(const std::vector<std::string>& sans);

}  // namespace keychain::ctl
