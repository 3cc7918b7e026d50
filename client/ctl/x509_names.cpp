// Subject names and subjectAltName values.
#include "x509_names.h"

#include <arpa/inet.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/x509.h>

#include <algorithm>
#include <cctype>
#include <string_view>

#include "ctl.h"

namespace keychain::ctl {

namespace {

// GeneralName's context-specific tags (RFC 5280 section 4.2.1.6), all primitive here.
constexpr unsigned char kRfc822Name = 1;
constexpr unsigned char kDnsName = 2;
constexpr unsigned char kUri = 6;
constexpr unsigned char kIpAddress = 7;

bool printable_ascii(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
    });
}

bool dns_name(std::string_view s) {
    return !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '*' ||
               c == '_';
    });
}

struct GeneralName {
    unsigned char tag;
    std::vector<uint8_t> value;
};

GeneralName parse_san(const std::string& san) {
    const size_t colon = san.find(':');
    if (colon == std::string::npos)
        usage_error("--san " + san + ": give TYPE:VALUE with TYPE DNS, IP, email or URI");
    std::string type = san.substr(0, colon);
    std::transform(type.begin(), type.end(), type.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    const std::string value = san.substr(colon + 1);
    const std::vector<uint8_t> bytes(value.begin(), value.end());
    if (type == "DNS") {
        if (!dns_name(value)) usage_error("--san " + san + ": not a DNS name");
        return {kDnsName, bytes};
    }
    if (type == "EMAIL") {
        if (!printable_ascii(value) || value.find('@') == std::string::npos)
            usage_error("--san " + san + ": not an email address");
        return {kRfc822Name, bytes};
    }
    if (type == "URI") {
        if (!printable_ascii(value) || value.find(':') == std::string::npos)
            usage_error("--san " + san + ": not a URI");
        return {kUri, bytes};
    }
    if (type == "IP") {
        unsigned char addr[16];
        if (inet_pton(AF_INET, value.c_str(), addr) == 1) return {kIpAddress, {addr, addr + 4}};
        if (inet_pton(AF_INET6, value.c_str(), addr) == 1) return {kIpAddress, {addr, addr + 16}};
        usage_error("--san " + san + ": not an IPv4 or IPv6 address");
    }
    usage_error("--san " + san + ": unknown type " + san.substr(0, colon) +
                " (DNS, IP, email or URI)");
}

}  // namespace

SubjectName::SubjectName(const std::string& text) : text_(text) {
    if (text.empty())
        usage_error("--subject is empty: give e.g. \"CN=www.example.com,O=Example,C=FR\"");
    const int rc = mbedtls_x509_string_to_names(&head_, text.c_str());
    if (rc != 0 || head_ == nullptr)
        usage_error("--subject \"" + text +
                    "\" is not a distinguished name keychainctl can write: give NAME=value pairs "
                    "separated by "
                    "commas, with NAME one of CN, O, OU, C, L, ST, emailAddress, serialNumber, DC "
                    "(\\, for a comma)");
}

SubjectName::~SubjectName() { mbedtls_asn1_free_named_data_list(&head_); }

std::vector<uint8_t> subject_alt_names_der(const std::vector<std::string>& sans) {
    if (sans.empty()) return {};
    std::vector<GeneralName> names;
    size_t total = 0;
    for (const auto& s : sans) {
        names.push_back(parse_san(s));
        total += names.back().value.size() + 8;
    }
    std::vector<uint8_t> buf(total + 16);
    unsigned char* const start = buf.data();
    unsigned char* p = start + buf.size();
    size_t len = 0;
    const auto add = [&len](int rc) {
        if (rc < 0) throw CtlError(kExitUsage, "the subjectAltName values are too long to encode");
        len += static_cast<size_t>(rc);
    };
    // DER is written backwards: the last name first.
    for (auto it = names.rbegin(); it != names.rend(); ++it) {
        add(mbedtls_asn1_write_raw_buffer(&p, start, it->value.data(), it->value.size()));
        add(mbedtls_asn1_write_len(&p, start, it->value.size()));
        add(mbedtls_asn1_write_tag(&p, start, MBEDTLS_ASN1_CONTEXT_SPECIFIC | it->tag));
    }
    add(mbedtls_asn1_write_len(&p, start, len));
    add(mbedtls_asn1_write_tag(&p, start, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    return {p, start + buf.size()};
}

}  // namespace keychain::ctl
