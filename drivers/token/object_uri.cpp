// PKCS#11 URIs: parsing and matching through p11-kit, and writing the URI of a key's object.
#include "token/object_uri.h"

#include "token/pkcs11_error.h"

namespace keychaind::token {
namespace {

void put_encoded(std::string& out, std::string_view bytes, bool encode_all) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (const char ch : bytes) {
        const auto u = static_cast<unsigned char>(ch);
        const bool unreserved = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
                                (u >= '0' && u <= '9') || u == '-' || u == '.' || u == '_' || u == '~';
        if (unreserved && !encode_all) {
            out += ch;
        } else {
            out += '%';
            out += kHex[u >> 4];
            out += kHex[u & 15];
        }
    }
}

std::string_view type_name(CK_OBJECT_CLASS cls) {
    switch (cls) {
        case CKO_PRIVATE_KEY: return "private";
        case CKO_SECRET_KEY: return "secret-key";
        case CKO_PUBLIC_KEY: return "public";
        case CKO_CERTIFICATE: return "cert";
        default: return "data";
    }
}

}  // namespace

Pkcs11Uri::Pkcs11Uri(const std::string& text, P11KitUriType type)
    : text_(text), uri_(p11_kit_uri_new(), p11_kit_uri_free) {
    if (!uri_) throw TokenFault("out of memory parsing a pkcs11: URI");
    const int rc = p11_kit_uri_parse(text.c_str(), type, uri_.get());
    if (rc != P11_KIT_URI_OK)
        throw TokenFault("\"" + text + "\" is not a pkcs11: URI: " + p11_kit_uri_message(rc));
    if (p11_kit_uri_any_unrecognized(uri_.get()))
        throw TokenFault("\"" + text + "\" has attributes keychaind does not match on");
    if (p11_kit_uri_get_pin_value(uri_.get()) != nullptr || p11_kit_uri_get_pin_source(uri_.get()) != nullptr)
        throw TokenFault("\"" + text + "\" carries a PIN");
}

Pkcs11Uri Pkcs11Uri::for_token(const std::string& text) { return Pkcs11Uri(text, P11_KIT_URI_FOR_TOKEN); }

Pkcs11Uri Pkcs11Uri::for_object(const std::string& text) {
    return Pkcs11Uri(text, P11_KIT_URI_FOR_OBJECT_ON_TOKEN);
}

bool Pkcs11Uri::matches_token(const CK_TOKEN_INFO& token) const {
    return p11_kit_uri_match_token_info(uri_.get(), &token) != 0;
}

bool Pkcs11Uri::matches_object(const CK_TOKEN_INFO& token, CK_OBJECT_CLASS cls, std::string_view label,
                               std::span<const uint8_t> id) const {
    if (!matches_token(token)) return false;
    CK_ATTRIBUTE attrs[3] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
        {CKA_ID, const_cast<uint8_t*>(id.data()), id.size()},
    };
    return p11_kit_uri_match_attributes(uri_.get(), attrs, 3) != 0;
}

std::string object_uri(std::string_view token_label, std::string_view token_serial,
                       std::string_view object_label, std::span<const uint8_t> id, CK_OBJECT_CLASS cls) {
    std::string out = "pkcs11:token=";
    put_encoded(out, token_label, false);
    if (!token_serial.empty()) {
        out += ";serial=";
        put_encoded(out, token_serial, false);
    }
    if (!object_label.empty()) {
        out += ";object=";
        put_encoded(out, object_label, false);
    }
    if (!id.empty()) {
        out += ";id=";
        put_encoded(out, std::string_view(reinterpret_cast<const char*>(id.data()), id.size()), true);
    }
    out += ";type=";
    out += type_name(cls);
    return out;
}

}  // namespace keychaind::token
